// crypto: getRandomValues, randomUUID and the part of crypto.subtle real
// integrations need (SHA digests, HMAC sign/verify, constant-time compare).
// The primitives are Rust (RustCrypto's sha1/sha2/hmac, randomness from the
// host's WASI random); this file checks arguments the way Web Crypto does.
(function (native, global, internal) {
  "use strict";

  const { DOMException, install } = internal;
  const HASHES = ["SHA-1", "SHA-256", "SHA-384", "SHA-512"];
  const MAX_RANDOM_BYTES = 65536;

  const notSupported = (message) => new DOMException(message, "NotSupportedError");

  /** An ArrayBuffer or a view of one, as a Uint8Array over a copy of exactly its bytes. */
  function bytesOf(where, data) {
    if (data instanceof ArrayBuffer) return new Uint8Array(data.slice(0));
    if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    throw new TypeError(`${where}: expected an ArrayBuffer, a TypedArray or a DataView`);
  }

  const toArrayBuffer = (bytes) => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);

  function algorithmName(where, algorithm) {
    const name = typeof algorithm === "string" ? algorithm : algorithm?.name;
    if (typeof name !== "string") throw new TypeError(`${where}: the algorithm needs a name, like "SHA-256" or { name: "HMAC", hash: "SHA-256" }`);
    return name.toUpperCase();
  }

  function hashName(where, algorithm) {
    const name = algorithmName(where, algorithm);
    if (!HASHES.includes(name)) throw notSupported(`${where}: unsupported hash ${name}; use one of ${HASHES.join(", ")}`);
    return name;
  }

  // Key material lives here, not on the key object: an extractable: false
  // key cannot be read back by the function that holds it.
  const material = new WeakMap();

  class CryptoKey {
    constructor() {
      throw new TypeError("CryptoKey cannot be constructed; use crypto.subtle.importKey()");
    }
  }

  function makeKey(bytes, hash, extractable, usages) {
    const key = Object.create(CryptoKey.prototype);
    Object.defineProperties(key, {
      type: { value: "secret", enumerable: true },
      extractable: { value: extractable, enumerable: true },
      algorithm: { value: Object.freeze({ name: "HMAC", hash: Object.freeze({ name: hash }), length: bytes.length * 8 }), enumerable: true },
      usages: { value: Object.freeze([...usages]), enumerable: true },
    });
    material.set(key, bytes);
    return key;
  }

  function keyFor(where, key, usage) {
    const bytes = material.get(key);
    if (!bytes) throw new TypeError(`${where}: the key must be a CryptoKey from crypto.subtle.importKey()`);
    if (!key.usages.includes(usage)) {
      throw new DOMException(`${where}: this key's usages (${key.usages.join(", ") || "none"}) do not include "${usage}"`, "InvalidAccessError");
    }
    return bytes;
  }

  function checkHmac(where, algorithm, key) {
    const name = algorithmName(where, algorithm);
    if (name !== "HMAC") throw notSupported(`${where}: only HMAC keys are supported, not ${name}`);
    if (key?.algorithm?.name !== "HMAC") throw new DOMException(`${where}: the key is not an HMAC key`, "InvalidAccessError");
  }

  // Web Crypto's methods return promises even for synchronous work: errors
  // become rejections, as callers expect of `await crypto.subtle...`.
  const promised = (fn) => (...args) => {
    try {
      return Promise.resolve(fn(...args));
    } catch (error) {
      return Promise.reject(error);
    }
  };

  const subtle = {
    digest: promised((algorithm, data) => {
      return toArrayBuffer(native.digest(hashName("digest()", algorithm), bytesOf("digest()", data)));
    }),

    importKey: promised((format, keyData, algorithm, extractable, usages) => {
      const where = "importKey()";
      if (format !== "raw") throw notSupported(`${where}: only the "raw" format is supported, not ${JSON.stringify(format)}`);
      if (algorithmName(where, algorithm) !== "HMAC") throw notSupported(`${where}: only HMAC keys are supported`);
      const hash = hashName(where, algorithm.hash);
      if (!Array.isArray(usages) || usages.some((u) => u !== "sign" && u !== "verify")) {
        throw new SyntaxError(`${where}: an HMAC key's usages are "sign" and/or "verify"`);
      }
      if (usages.length === 0) throw new SyntaxError(`${where}: give the key at least one usage ("sign", "verify")`);
      const bytes = bytesOf(where, keyData);
      if (bytes.length === 0) throw new DOMException(`${where}: an HMAC key cannot be empty`, "DataError");
      if (algorithm.length !== undefined && algorithm.length !== bytes.length * 8) {
        throw new DOMException(`${where}: length ${algorithm.length} does not match the ${bytes.length * 8}-bit key`, "DataError");
      }
      return makeKey(bytes, hash, Boolean(extractable), usages);
    }),

    exportKey: promised((format, key) => {
      if (format !== "raw") throw notSupported(`exportKey(): only the "raw" format is supported`);
      const bytes = material.get(key);
      if (!bytes) throw new TypeError("exportKey(): expected a CryptoKey");
      if (!key.extractable) throw new DOMException("exportKey(): the key is not extractable", "InvalidAccessError");
      return toArrayBuffer(bytes);
    }),

    sign: promised((algorithm, key, data) => {
      checkHmac("sign()", algorithm, key);
      return toArrayBuffer(native.hmac(key.algorithm.hash.name, keyFor("sign()", key, "sign"), bytesOf("sign()", data)));
    }),

    // The expected tag is compared in constant time: a forged signature
    // learns nothing from how long the comparison took.
    verify: promised((algorithm, key, signature, data) => {
      checkHmac("verify()", algorithm, key);
      const expected = native.hmac(key.algorithm.hash.name, keyFor("verify()", key, "verify"), bytesOf("verify()", data));
      return native.timingSafeEqual(expected, bytesOf("verify()", signature));
    }),

    /** Cloudflare Workers' extension: constant-time equality of two buffers of the same length. */
    timingSafeEqual(a, b) {
      const left = bytesOf("timingSafeEqual()", a);
      const right = bytesOf("timingSafeEqual()", b);
      if (left.length !== right.length) throw new TypeError("timingSafeEqual(): the two inputs must have the same length");
      return native.timingSafeEqual(left, right);
    },
  };

  const INTEGER_ARRAYS = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, BigInt64Array, BigUint64Array];

  const crypto = {
    subtle,

    getRandomValues(array) {
      if (!INTEGER_ARRAYS.some((type) => array instanceof type)) {
        throw new DOMException("getRandomValues(): expected an integer TypedArray (Uint8Array, Uint32Array, ...)", "TypeMismatchError");
      }
      if (array.byteLength > MAX_RANDOM_BYTES) {
        throw new DOMException(`getRandomValues(): at most ${MAX_RANDOM_BYTES} bytes at a time, not ${array.byteLength}`, "QuotaExceededError");
      }
      new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(native.randomBytes(array.byteLength));
      return array;
    },

    /** A version 4 UUID from 122 random bits. */
    randomUUID() {
      const bytes = native.randomBytes(16);
      bytes[6] = (bytes[6] & 0x0f) | 0x40;
      bytes[8] = (bytes[8] & 0x3f) | 0x80;
      let hex = "";
      for (let i = 0; i < 16; i++) hex += (bytes[i] + 0x100).toString(16).slice(1);
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    },
  };

  Object.freeze(subtle);
  install(global, { crypto: Object.freeze(crypto), CryptoKey });
})
