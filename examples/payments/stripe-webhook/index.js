// Checkout, step two: Stripe's webhook. Verifies the Stripe-Signature header
// the way Stripe's libraries do, marks the order paid on
// `payment_intent.succeeded` and emails the buyer a confirmation (Resend's
// HTTP API, as in the contact-form example).
//
// Public (Stripe has no edgefn account) and run with the service database
// role (there is no end user whose rows these are): the signature is the
// only thing that lets a request change an order, so nothing happens before
// it is verified.
//
// Stripe retries a delivery that does not get a 2xx. Every step is written
// so a retry finishes the work instead of repeating it: an order already
// paid stays paid, and the confirmation is sent once (claimed before sending,
// released if sending fails, and sent with an idempotency key).
//
// Secrets: STRIPE_WEBHOOK_SECRET (the endpoint's signing secret, whsec_...),
// EMAIL_API_KEY; EMAIL_API_URL (optional, only when granted: another base
// URL for the email provider, e.g. a test double).

const FROM = "Example Shop <orders@example.com>";
const DEFAULT_EMAIL_API = "https://api.resend.com";
const EMAIL_TIMEOUT_MS = 8000;
// Stripe's libraries refuse signatures older than five minutes (replays).
const TOLERANCE_SECONDS = 300;
// Currencies Stripe counts in whole units (no cents).
const ZERO_DECIMAL = new Set(["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"]);

export default {
  async fetch(request, env, ctx) {
    if (request.method !== "POST") {
      return Response.json({ error: "method_not_allowed", message: "Use POST." }, { status: 405, headers: { allow: "POST" } });
    }
    // The raw bytes are what Stripe signed: verify them before parsing.
    const payload = new Uint8Array(await request.arrayBuffer());
    const problem = await verifySignature(request.headers.get("stripe-signature"), payload, env.STRIPE_WEBHOOK_SECRET);
    if (problem) {
      console.warn(`refused a webhook: ${problem}`);
      return Response.json({ error: "invalid_signature", message: problem }, { status: 400 });
    }

    let event;
    try {
      event = JSON.parse(new TextDecoder().decode(payload));
    } catch {
      return Response.json({ error: "invalid_json", message: "The event is not JSON." }, { status: 400 });
    }
    console.log(`event ${event.id}: ${event.type}`);
    if (event.type === "payment_intent.succeeded") return paymentSucceeded(env, ctx.db, event.data?.object);
    // Acknowledged so Stripe stops sending it; subscribe the endpoint to
    // fewer events to avoid the traffic.
    return Response.json({ received: true, handled: false });
  },
};

/**
 * Why the header does not prove that Stripe sent `payload`, or null when it
 * does. The header is `t=<unix time>,v1=<hex HMAC-SHA256>[,v1=...]`: the
 * HMAC, keyed with the whole signing secret, is over "<t>.<raw body>".
 * Several v1 entries are allowed (Stripe sends two while a secret is being
 * rolled); any one matching is enough. Entries of other schemes (v0) are
 * ignored, as Stripe's libraries do.
 */
async function verifySignature(header, payload, secret) {
  if (!header) return "the Stripe-Signature header is missing";
  let timestamp = null;
  const signatures = [];
  for (const item of header.split(",")) {
    const at = item.indexOf("=");
    if (at < 0) continue;
    const key = item.slice(0, at);
    const value = item.slice(at + 1);
    if (key === "t") timestamp = /^[0-9]{1,15}$/.test(value) ? Number(value) : NaN;
    else if (key === "v1") signatures.push(value);
  }
  if (!Number.isSafeInteger(timestamp)) return "the Stripe-Signature header has no valid timestamp";
  if (signatures.length === 0) return "the Stripe-Signature header has no v1 signature";

  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const prefix = encoder.encode(`${timestamp}.`);
  const signed = new Uint8Array(prefix.length + payload.length);
  signed.set(prefix);
  signed.set(payload, prefix.length);
  const expected = encoder.encode(hex(await crypto.subtle.sign("HMAC", key, signed)));

  // Compared as lower-case hex text, like Stripe's libraries, in constant
  // time; every candidate is compared, so timing does not tell which matched.
  let matched = false;
  for (const signature of signatures) {
    const candidate = encoder.encode(signature);
    if (candidate.length === expected.length && crypto.subtle.timingSafeEqual(candidate, expected)) matched = true;
  }
  if (!matched) return "no v1 signature matches the payload";

  // The timestamp is signed, so only now can it be trusted: this is what
  // stops a captured delivery from being replayed later. One from the future
  // is refused too (Stripe's libraries only refuse old ones), as only a
  // badly wrong clock on one side could produce it.
  const age = Math.floor(Date.now() / 1000) - timestamp;
  if (Math.abs(age) > TOLERANCE_SECONDS) return `the signature's timestamp is outside the ${TOLERANCE_SECONDS} s tolerance`;
  return null;
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

async function paymentSucceeded(env, db, intent) {
  if (typeof intent?.id !== "string") {
    return Response.json({ error: "invalid_event", message: "The event carries no payment intent." }, { status: 400 });
  }
  const orders = () => db.from("orders");
  const { data: order, error } = await orders()
    .select("id,email,description,quantity,amount,currency,status")
    .eq("payment_intent_id", intent.id)
    .maybeSingle();
  if (error) throw error; // a 500: Stripe retries later
  if (!order) {
    // An intent this shop did not create (another integration on the same
    // Stripe account): nothing to do, and nothing a retry would change.
    console.warn(`payment intent ${intent.id} belongs to no order`);
    return Response.json({ received: true, handled: false });
  }
  const received = intent.amount_received ?? intent.amount;
  if (received !== order.amount || String(intent.currency).toLowerCase() !== order.currency) {
    // Not marked paid: someone has to look. The failing delivery shows up
    // in Stripe's dashboard, and this line in the execution record.
    console.error(`order ${order.id}: intent ${intent.id} paid ${received} ${intent.currency}, the order is ${order.amount} ${order.currency}`);
    return Response.json({ error: "amount_mismatch", message: "The payment does not match the order." }, { status: 422 });
  }

  if (order.status === "pending") {
    await orders().update({ status: "paid", paid_at: new Date().toISOString() }).eq("id", order.id).eq("status", "pending").throwOnError();
  }

  // Claim the confirmation: of two deliveries racing, one sends it.
  const { data: claimed } = await orders()
    .update({ confirmation_sent_at: new Date().toISOString() })
    .eq("id", order.id)
    .is("confirmation_sent_at", null)
    .select("id")
    .throwOnError();
  if (claimed.length === 0) return Response.json({ received: true, handled: true, duplicate: true });
  if (!order.email) {
    console.warn(`order ${order.id} is paid; the buyer has no email address to confirm to`);
    return Response.json({ received: true, handled: true });
  }

  try {
    await sendEmail(env, `order-confirmation-${order.id}`, {
      from: FROM,
      to: [order.email],
      subject: "Your order is confirmed",
      text:
        `Thank you for your order.\n\n` +
        `${order.quantity} × ${order.description}\n` +
        `Paid: ${formatAmount(order.amount, order.currency)}\n` +
        `Order: ${order.id}\n`,
    });
  } catch (failure) {
    // Released so Stripe's retry of this delivery sends it; the order stays paid.
    await orders().update({ confirmation_sent_at: null }).eq("id", order.id).throwOnError();
    console.error(`order ${order.id} is paid; the confirmation failed: ${failure.message}`);
    return Response.json({ error: "email_failed", message: "The order is paid; the confirmation will be sent on retry." }, { status: 502 });
  }
  return Response.json({ received: true, handled: true });
}

function formatAmount(amount, currency) {
  const units = ZERO_DECIMAL.has(currency) ? String(amount) : (amount / 100).toFixed(2);
  return `${units} ${currency.toUpperCase()}`;
}

/**
 * Sends one email through the provider; throws an Error saying what went
 * wrong. The idempotency key makes a retry after a lost answer harmless.
 */
async function sendEmail(env, idempotencyKey, email) {
  const base = ("EMAIL_API_URL" in env ? env.EMAIL_API_URL : DEFAULT_EMAIL_API).replace(/\/+$/, "");
  let response;
  try {
    response = await fetch(`${base}/emails`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${env.EMAIL_API_KEY}`,
        "content-type": "application/json",
        "idempotency-key": idempotencyKey,
      },
      body: JSON.stringify(email),
      signal: AbortSignal.timeout(EMAIL_TIMEOUT_MS),
    });
  } catch (failure) {
    throw new Error(`the email provider could not be reached (${failure.name}: ${failure.message})`);
  }
  if (!response.ok) {
    const detail = (await response.text()).slice(0, 300);
    throw new Error(`the email provider answered ${response.status}: ${detail}`);
  }
  return response.json();
}
