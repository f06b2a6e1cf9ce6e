// Verifies a Stripe-style signature header (`t=<unix time>,v1=<hex HMAC-SHA256
// of "<t>.<body>">`) with crypto.subtle, in constant time, within a
// five-minute tolerance; also reports a SHA-256 of the body and a random UUID.
const TOLERANCE_SECONDS = 300;
const hex = (buffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
const unhex = (text) => new Uint8Array((text.match(/../g) ?? []).map((pair) => parseInt(pair, 16)));

export default {
  async fetch(request, env) {
    const body = await request.text();
    const header = request.headers.get("x-signature") ?? "";
    const parts = Object.fromEntries(header.split(",").map((part) => part.split("=", 2)));
    const timestamp = Number(parts.t);
    if (!Number.isInteger(timestamp) || !/^[0-9a-f]{64}$/.test(parts.v1 ?? "")) {
      return Response.json({ error: "malformed signature header" }, { status: 400 });
    }
    if (Math.abs(Date.now() / 1000 - timestamp) > TOLERANCE_SECONDS) {
      return Response.json({ error: "timestamp outside the tolerance" }, { status: 400 });
    }
    const encoder = new TextEncoder();
    const key = await crypto.subtle.importKey("raw", encoder.encode(env.WEBHOOK_SECRET), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
    const valid = await crypto.subtle.verify("HMAC", key, unhex(parts.v1), encoder.encode(`${timestamp}.${body}`));
    if (!valid) return Response.json({ error: "signature mismatch" }, { status: 400 });
    const digest = hex(await crypto.subtle.digest("SHA-256", encoder.encode(body)));
    return Response.json({ verified: true, sha256: digest, uuid: crypto.randomUUID() });
  },
};
