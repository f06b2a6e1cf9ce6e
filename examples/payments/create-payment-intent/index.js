// Checkout, step one: a signed-in user orders a product; this creates the
// order (pending), a Stripe PaymentIntent for its amount, and returns the
// intent's client_secret for Stripe.js to confirm the payment in the browser.
// The stripe-webhook function marks the order paid when Stripe says so.
//
// POST {"product": "pro-monthly", "quantity": 1}
//   → 201 {"order_id", "payment_intent_id", "client_secret", "amount", "currency"}
//
// Secrets: STRIPE_SECRET_KEY; STRIPE_API_URL (optional, only when granted:
// another base URL for Stripe's API, e.g. a test double).

// Prices are decided here, never by the client. Amounts are in the
// currency's smallest unit (cents), as Stripe expects.
const PRODUCTS = {
  "pro-monthly": { description: "Pro plan, one month", amount: 1200, currency: "eur" },
  "pro-yearly": { description: "Pro plan, one year", amount: 12000, currency: "eur" },
  "credits-1000": { description: "1,000 API credits", amount: 900, currency: "eur" },
};
const MAX_QUANTITY = 10;
const DEFAULT_STRIPE_API = "https://api.stripe.com";
const STRIPE_TIMEOUT_MS = 8000;

export default {
  async fetch(request, env, ctx) {
    if (request.method !== "POST") {
      return Response.json({ error: "method_not_allowed", message: "Use POST." }, { status: 405, headers: { allow: "POST" } });
    }
    // The access policy admits signed-in users only; the order belongs to the caller.
    if (!ctx.caller) return Response.json({ error: "unauthorized", message: "Sign in first." }, { status: 401 });

    let body;
    try {
      body = await request.json();
    } catch {
      return Response.json({ error: "invalid_json", message: 'Send {"product": "...", "quantity": 1} as JSON.' }, { status: 400 });
    }
    const fields = {};
    const product = typeof body?.product === "string" && Object.hasOwn(PRODUCTS, body.product) ? PRODUCTS[body.product] : null;
    if (!product) {
      fields.product = `Choose one of: ${Object.keys(PRODUCTS).join(", ")}.`;
    }
    const quantity = body?.quantity ?? 1;
    if (!Number.isInteger(quantity) || quantity < 1 || quantity > MAX_QUANTITY) {
      fields.quantity = `Order between 1 and ${MAX_QUANTITY}.`;
    }
    if (Object.keys(fields).length > 0) {
      return Response.json({ error: "invalid_fields", message: "The order is not valid.", fields }, { status: 422 });
    }

    const orders = () => ctx.db.from("orders");
    const amount = product.amount * quantity;
    const { data: order, error } = await orders()
      .insert({ product: body.product, description: product.description, quantity, amount, currency: product.currency })
      .select("id")
      .single();
    if (error) {
      console.error("creating the order failed:", error.code, error.message);
      return Response.json({ error: "not_stored", message: "The order could not be created; try again." }, { status: 500 });
    }

    let intent;
    try {
      intent = await createPaymentIntent(env, order.id, {
        amount: String(amount),
        currency: product.currency,
        description: `${quantity} × ${product.description}`,
        "automatic_payment_methods[enabled]": "true",
        "metadata[order_id]": order.id,
        "metadata[user_id]": ctx.caller.id,
      });
    } catch (failure) {
      // The order stays pending without an intent: an abandoned checkout.
      console.error(`order ${order.id}: ${failure.message}`);
      return Response.json(
        { error: "payment_provider_failed", message: "The payment could not be started; try again.", order_id: order.id },
        { status: 502 },
      );
    }

    const { count, error: attachError } = await orders().update({ payment_intent_id: intent.id }).eq("id", order.id);
    if (attachError || count !== 1) {
      console.error(`order ${order.id}: storing payment intent ${intent.id} failed:`, attachError?.message ?? `${count} rows`);
      return Response.json({ error: "not_stored", message: "The order could not be updated; try again." }, { status: 500 });
    }
    return Response.json(
      { order_id: order.id, payment_intent_id: intent.id, client_secret: intent.client_secret, amount, currency: product.currency },
      { status: 201 },
    );
  },
};

/**
 * POST /v1/payment_intents, form-encoded as Stripe's API wants. The order id
 * is the idempotency key, so a retried request never creates a second intent.
 */
async function createPaymentIntent(env, orderId, params) {
  const base = ("STRIPE_API_URL" in env ? env.STRIPE_API_URL : DEFAULT_STRIPE_API).replace(/\/+$/, "");
  let response;
  try {
    response = await fetch(`${base}/v1/payment_intents`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${env.STRIPE_SECRET_KEY}`,
        "content-type": "application/x-www-form-urlencoded",
        "idempotency-key": `order-${orderId}`,
      },
      body: new URLSearchParams(params),
      signal: AbortSignal.timeout(STRIPE_TIMEOUT_MS),
    });
  } catch (failure) {
    throw new Error(`Stripe could not be reached (${failure.name}: ${failure.message})`);
  }
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error(`Stripe answered ${response.status}: ${answer?.error?.message ?? "no error message"}`);
  }
  if (typeof answer?.id !== "string" || typeof answer?.client_secret !== "string") {
    throw new Error("Stripe answered without an intent id and client_secret");
  }
  return answer;
}
