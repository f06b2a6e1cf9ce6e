import { test } from "node:test";
import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { loadRuntime } from "./harness.mjs";

// The runtime's crypto against Node's own WebCrypto: same inputs, same bytes.
const { global } = loadRuntime();
const { crypto, CryptoKey, DOMException } = global;
const text = (s) => new TextEncoder().encode(s);
const hex = (buffer) => Buffer.from(buffer).toString("hex");

test("digest matches WebCrypto for every SHA and every input shape", async () => {
  const data = text("edgefn digests this");
  for (const name of ["SHA-1", "SHA-256", "SHA-384", "SHA-512"]) {
    const expected = hex(await webcrypto.subtle.digest(name, data));
    assert.equal(hex(await crypto.subtle.digest(name, data)), expected, name);
    assert.equal(hex(await crypto.subtle.digest({ name: name.toLowerCase() }, data.buffer)), expected, `${name} (object, ArrayBuffer)`);
  }
  // A view digests only its own bytes, not the whole buffer.
  const view = new Uint8Array([0, 1, 2, 3, 4]).subarray(1, 3);
  assert.equal(hex(await crypto.subtle.digest("SHA-256", view)), hex(await webcrypto.subtle.digest("SHA-256", new Uint8Array([1, 2]))));
  await assert.rejects(crypto.subtle.digest("MD5", data), (e) => e.name === "NotSupportedError");
  await assert.rejects(crypto.subtle.digest("SHA-256", "a string"), TypeError);
});

test("HMAC sign and verify match WebCrypto; a wrong signature fails", async () => {
  const secret = text("whsec_test_secret");
  const payload = text("1700000000.{\"id\":\"evt_1\"}");
  for (const hash of ["SHA-1", "SHA-256", "SHA-512"]) {
    const key = await crypto.subtle.importKey("raw", secret, { name: "HMAC", hash }, false, ["sign", "verify"]);
    const reference = await webcrypto.subtle.importKey("raw", secret, { name: "HMAC", hash }, false, ["sign"]);
    const signature = await crypto.subtle.sign("HMAC", key, payload);
    assert.equal(hex(signature), hex(await webcrypto.subtle.sign("HMAC", reference, payload)), hash);
    assert.equal(await crypto.subtle.verify("HMAC", key, signature, payload), true);
    const forged = new Uint8Array(signature);
    forged[0] ^= 1;
    assert.equal(await crypto.subtle.verify("HMAC", key, forged, payload), false);
    assert.equal(await crypto.subtle.verify("HMAC", key, forged.subarray(1), payload), false, "a shorter tag never verifies");
  }
});

test("keys are CryptoKeys with their usages enforced and material hidden", async () => {
  const key = await crypto.subtle.importKey("raw", text("k"), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  assert.ok(key instanceof CryptoKey);
  assert.deepEqual({ ...key.algorithm, hash: { ...key.algorithm.hash } }, { name: "HMAC", hash: { name: "SHA-256" }, length: 8 });
  assert.deepEqual(Object.keys(key).sort(), ["algorithm", "extractable", "type", "usages"]);
  await assert.rejects(crypto.subtle.sign("HMAC", key, text("x")), (e) => e.name === "InvalidAccessError");
  await assert.rejects(crypto.subtle.exportKey("raw", key), (e) => e.name === "InvalidAccessError");
  const exportable = await crypto.subtle.importKey("raw", text("key!"), { name: "HMAC", hash: "SHA-256" }, true, ["sign"]);
  assert.equal(Buffer.from(await crypto.subtle.exportKey("raw", exportable)).toString(), "key!");
  await assert.rejects(crypto.subtle.importKey("jwk", {}, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]), (e) => e.name === "NotSupportedError");
  await assert.rejects(crypto.subtle.importKey("raw", text("k"), { name: "AES-GCM" }, false, ["encrypt"]), (e) => e.name === "NotSupportedError");
  await assert.rejects(crypto.subtle.importKey("raw", text("k"), { name: "HMAC", hash: "SHA-256" }, false, ["encrypt"]), SyntaxError);
  await assert.rejects(crypto.subtle.importKey("raw", new Uint8Array(0), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]), (e) => e.name === "DataError");
  await assert.rejects(crypto.subtle.sign("HMAC", { algorithm: { name: "HMAC" }, usages: ["sign"] }, text("x")), TypeError);
  assert.throws(() => new CryptoKey(), TypeError);
});

test("timingSafeEqual compares buffers of the same length", () => {
  assert.equal(crypto.subtle.timingSafeEqual(text("same"), text("same")), true);
  assert.equal(crypto.subtle.timingSafeEqual(text("same"), text("sane")), false);
  assert.throws(() => crypto.subtle.timingSafeEqual(text("a"), text("ab")), TypeError);
});

test("getRandomValues fills integer arrays and randomUUID is a version 4 UUID", () => {
  const values = crypto.getRandomValues(new Uint32Array(8));
  assert.equal(new Set(values).size, 8, "eight random words are all different");
  const bytes = new Uint8Array(16);
  assert.equal(crypto.getRandomValues(bytes), bytes);
  assert.throws(() => crypto.getRandomValues(new Float64Array(2)), (e) => e.name === "TypeMismatchError");
  assert.throws(() => crypto.getRandomValues(new Uint8Array(65537)), (e) => e.name === "QuotaExceededError");
  const uuid = crypto.randomUUID();
  assert.match(uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.notEqual(uuid, crypto.randomUUID());
  assert.ok(DOMException);
});
