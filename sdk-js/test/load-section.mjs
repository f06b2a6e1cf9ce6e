// Loads one runtime section (sdk-js/runtime/<fileName>) the way the engine
// does: evaluate the script, take its completion value (the section
// function) and call it with (native, global, internal).
import nodeCrypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import vm from "node:vm";
import { fileURLToPath } from "node:url";

const runtimeDir = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "runtime");

export function loadSection(fileName, native, global = {}, internal = {}) {
  const filename = path.join(runtimeDir, fileName);
  const section = vm.runInThisContext(fs.readFileSync(filename, "utf8"), { filename });
  if (typeof section !== "function") {
    throw new TypeError(`${fileName} did not evaluate to a function`);
  }
  section(native, global, internal);
  return { global, internal };
}

// A `native` stand-in backed by Node's own WHATWG implementations.
export function createNative() {
  const nodeHash = (algorithm) => algorithm.replace("SHA-", "sha");
  return {
    // Node's own crypto stands in for the engine's RustCrypto primitives.
    digest: (algorithm, data) => new Uint8Array(nodeCrypto.createHash(nodeHash(algorithm)).update(data).digest()),
    hmac: (algorithm, key, data) => new Uint8Array(nodeCrypto.createHmac(nodeHash(algorithm), key).update(data).digest()),
    timingSafeEqual: (a, b) => a.length === b.length && nodeCrypto.timingSafeEqual(a, b),
    randomBytes: (length) => new Uint8Array(nodeCrypto.randomBytes(length)),
    parseURL(input, base) {
      let url;
      try {
        url = base === undefined ? new globalThis.URL(input) : new globalThis.URL(input, base);
      } catch {
        return null;
      }
      const { href, protocol, username, password, hostname, port, pathname, search, hash } = url;
      return { href, protocol, username, password, hostname, port, pathname, search, hash };
    },
    // Node's URLSearchParams strips one leading "?" from a string; the "?"
    // added here is that one, so `input` itself is parsed as it is.
    parseFormUrlencoded(input) {
      return [...new URLSearchParams("?" + input)];
    },
    encodeUtf8(string) {
      return new Uint8Array(Buffer.from(string, "utf8"));
    },
    decodeUtf8(bytes, fatal) {
      // Like the engine's Rust decoder: a BOM is kept; TextDecoder strips it itself.
      return new TextDecoder("utf-8", { fatal, ignoreBOM: true }).decode(bytes);
    },
    // As the engine's: true when a header value needs no trimming and holds
    // no line break or NUL, so the JS side can skip its own checks.
    isPlainHeaderValue(text) {
      return !/^[\t\n\r ]|[\t\n\r ]$|[\r\n\0]/.test(text);
    },
    // As the engine's: 0 when `init` is not a record (not an object, a
    // function, or iterable), else its entries appended to `list` flat,
    // each read once; normalized (1) when every name is a token and every
    // value a plain string or a number, else as read (2).
    headerRecord(init, list) {
      if (typeof init !== "object" || init === null || typeof init[Symbol.iterator] === "function") return 0;
      const read = Object.keys(init).map((name) => [name, init[name]]);
      const clean = read.every(
        ([name, value]) =>
          /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name) &&
          (typeof value === "number" || (typeof value === "string" && this.isPlainHeaderValue(value))),
      );
      for (const [name, value] of read) {
        list.push(clean ? name.toLowerCase() : name, clean ? String(value) : value);
      }
      return clean ? 1 : 2;
    },
    log() {},
  };
}
