// A website's contact form: anyone may post it (from a page's <form> or with
// fetch), the message is stored in `contact_messages`, and the team is told
// by email through Resend's HTTP API (any provider that takes
// `POST /emails` with a bearer key and {from, to, subject, text} fits).
//
// Secrets: EMAIL_API_KEY (the provider's key); EMAIL_API_URL (optional, only
// when granted: another base URL for the provider, e.g. a test double).

// Who sends the notification and who receives it: edit before deploying.
const NOTIFY = {
  from: "Website contact form <forms@example.com>",
  to: "hello@example.com",
};

const DEFAULT_EMAIL_API = "https://api.resend.com";
// Below the function's 10 s deadline, so a slow provider is an answer, not a timeout.
const EMAIL_TIMEOUT_MS = 8000;

// Longest accepted values, in characters (254 is the longest usable address).
const MAX_LENGTH = { name: 100, email: 254, message: 5000 };
// Anything larger is not a contact form: refuse before parsing it.
const MAX_BODY_CHARS = 64 * 1024;

// Pragmatic address check: one @, a dot in the domain, and none of the
// characters that would let a value break out of an address header.
const EMAIL = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:"]+\.[^\s@<>()[\]\\,;:"]+$/;
// Control characters (CR and LF included) never belong in a one-line field.
const CONTROL = /[\u0000-\u001f\u007f]/;

export default {
  async fetch(request, env, ctx) {
    if (request.method !== "POST") {
      return Response.json(
        { error: "method_not_allowed", message: "Send the form with POST." },
        { status: 405, headers: { allow: "POST" } },
      );
    }

    const input = await readForm(request);
    if (input instanceof Response) return input;

    const { values, fields } = validate(input);
    if (Object.keys(fields).length > 0) {
      return Response.json(
        { error: "invalid_fields", message: "Some fields need your attention.", fields },
        { status: 422 },
      );
    }

    // Stored first: the message must survive a failing email provider.
    const { data: stored, error } = await ctx.db
      .from("contact_messages")
      .insert(values)
      .select("id,created_at")
      .single();
    if (error) {
      console.error("storing the message failed:", error.code, error.message);
      return Response.json(
        { error: "not_stored", message: "Your message could not be saved. Please try again later." },
        { status: 500 },
      );
    }

    try {
      await sendEmail(env, {
        from: NOTIFY.from,
        to: [NOTIFY.to],
        reply_to: values.email,
        subject: `Contact form: ${values.name}`,
        text: `${values.name} <${values.email}> wrote (message ${stored.id}, ${stored.created_at}):\n\n${values.message}\n`,
      });
    } catch (failure) {
      console.error(`message ${stored.id} stored, notification failed: ${failure.message}`);
      return Response.json(
        {
          error: "notification_failed",
          message: "Your message was saved, but we could not notify the team right away. No need to send it again.",
          id: stored.id,
        },
        { status: 502 },
      );
    }
    return Response.json({ id: stored.id }, { status: 201 });
  },
};

/** The posted fields as an object, or the Response refusing the body. */
async function readForm(request) {
  const type = (request.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (type !== "application/json" && type !== "application/x-www-form-urlencoded") {
    return Response.json(
      { error: "unsupported_media_type", message: "Send application/json or application/x-www-form-urlencoded." },
      { status: 415 },
    );
  }
  const text = await request.text();
  if (text.length > MAX_BODY_CHARS) {
    return Response.json({ error: "too_large", message: "The form is too large." }, { status: 413 });
  }
  if (type === "application/x-www-form-urlencoded") return Object.fromEntries(new URLSearchParams(text));
  try {
    const parsed = JSON.parse(text);
    if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) return parsed;
  } catch {
    // Answered below, like any other body that is not a JSON object.
  }
  return Response.json({ error: "invalid_json", message: "The body must be a JSON object." }, { status: 400 });
}

/**
 * `{values, fields}`: the cleaned values, and a message per invalid field
 * (empty when all are valid), worded to be shown next to the field.
 */
function validate(input) {
  const fields = {};
  const values = {};
  const labels = { name: "your name", email: "your email address", message: "a message" };
  for (const field of ["name", "email", "message"]) {
    const raw = input[field];
    if (raw !== undefined && raw !== null && typeof raw !== "string") {
      fields[field] = `Enter ${labels[field]} as text.`;
      continue;
    }
    // Line endings as one kind, outer whitespace dropped.
    const value = (raw ?? "").replace(/\r\n?/g, "\n").trim();
    if (value === "") fields[field] = `Enter ${labels[field]}.`;
    else if (value.length > MAX_LENGTH[field]) fields[field] = `Keep it under ${MAX_LENGTH[field]} characters.`;
    else if (field !== "message" && CONTROL.test(value)) fields[field] = "Use a single line without control characters.";
    else if (field === "email" && !EMAIL.test(value)) fields[field] = "Enter a valid email address, like name@example.com.";
    else values[field] = value;
  }
  return { values, fields };
}

/**
 * Sends one email through the provider; throws an Error saying what went
 * wrong (never the key: the provider's answer is quoted, our request is not).
 */
async function sendEmail(env, email) {
  const base = ("EMAIL_API_URL" in env ? env.EMAIL_API_URL : DEFAULT_EMAIL_API).replace(/\/+$/, "");
  let response;
  try {
    response = await fetch(`${base}/emails`, {
      method: "POST",
      headers: { authorization: `Bearer ${env.EMAIL_API_KEY}`, "content-type": "application/json" },
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
