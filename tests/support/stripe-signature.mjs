// Prints a `Stripe-Signature` header for a webhook payload, made by Stripe's
// own library, so tests check our verification against Stripe's signing
// rather than against a second copy of our own reading of it.
//
// Input (stdin): {"payload": "<raw body>", "secret": "whsec_...", "timestamp": <unix seconds>}
// (`timestamp` is optional: now). Output (stdout): the header, e.g. `t=...,v1=...`.
import Stripe from "stripe";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { payload, secret, timestamp } = JSON.parse(Buffer.concat(chunks).toString("utf8"));
if (typeof payload !== "string" || typeof secret !== "string") {
  console.error('stripe-signature: expected {"payload": string, "secret": string, "timestamp"?: number} on stdin');
  process.exit(2);
}

// The API key is never used: signing a test header makes no request.
const stripe = new Stripe("sk_test_unused");
process.stdout.write(stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp }));
