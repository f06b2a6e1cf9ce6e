// Encoding: DOMException, TextEncoder/TextDecoder (UTF-8 only, done natively)
// and atob/btoa (forgiving base64, per the HTML standard).
(function (native, global, internal) {
  "use strict";

  const LEGACY_CODES = {
    IndexSizeError: 1, HierarchyRequestError: 3, WrongDocumentError: 4, InvalidCharacterError: 5,
    NoModificationAllowedError: 7, NotFoundError: 8, NotSupportedError: 9, InvalidStateError: 11,
    SyntaxError: 12, InvalidModificationError: 13, NamespaceError: 14, InvalidAccessError: 15,
    TypeMismatchError: 17, SecurityError: 18, NetworkError: 19, AbortError: 20, URLMismatchError: 21,
    QuotaExceededError: 22, TimeoutError: 23, InvalidNodeTypeError: 24, DataCloneError: 25,
  };

  class DOMException extends Error {
    #name;
    constructor(message = "", name = "Error") {
      super(String(message));
      this.#name = String(name);
    }
    get name() { return this.#name; }
    get code() { return LEGACY_CODES[this.#name] || 0; }
  }

  class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(input = "") {
      return native.encodeUtf8(String(input));
    }
    encodeInto(source, destination) {
      if (!(destination instanceof Uint8Array)) throw new TypeError("encodeInto: destination must be a Uint8Array");
      const text = String(source);
      // Encode whole code points only, as many as fit.
      let read = 0;
      let written = 0;
      for (const char of text) {
        const bytes = native.encodeUtf8(char);
        if (written + bytes.length > destination.length) break;
        destination.set(bytes, written);
        written += bytes.length;
        read += char.length;
      }
      return { read, written };
    }
  }

  const UTF8_LABELS = new Set(["utf-8", "utf8", "unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "x-unicode20utf8"]);

  function bytesOf(input) {
    if (input === undefined) return new Uint8Array(0);
    if (input instanceof Uint8Array) return input;
    if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    if (input instanceof ArrayBuffer) return new Uint8Array(input);
    throw new TypeError("TextDecoder.decode: input must be an ArrayBuffer or an ArrayBufferView");
  }

  class TextDecoder {
    #fatal;
    #ignoreBOM;
    constructor(label = "utf-8", options = {}) {
      const normalized = String(label).trim().toLowerCase();
      if (!UTF8_LABELS.has(normalized)) {
        throw new RangeError(`TextDecoder: the encoding "${label}" is not supported (edgefn decodes UTF-8 only)`);
      }
      this.#fatal = Boolean(options && options.fatal);
      this.#ignoreBOM = Boolean(options && options.ignoreBOM);
    }
    get encoding() { return "utf-8"; }
    get fatal() { return this.#fatal; }
    get ignoreBOM() { return this.#ignoreBOM; }
    // `{ stream: true }` is accepted but each call decodes its input whole.
    decode(input, options) {
      let bytes = bytesOf(input);
      if (!this.#ignoreBOM && bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
        bytes = bytes.subarray(3);
      }
      return native.decodeUtf8(bytes, this.#fatal);
    }
  }

  const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const DECODE = new Int16Array(128).fill(-1);
  for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

  function btoa(data) {
    const text = String(data);
    let out = "";
    for (let i = 0; i < text.length; i += 3) {
      const a = text.charCodeAt(i);
      const b = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      const c = i + 2 < text.length ? text.charCodeAt(i + 2) : 0;
      if (a > 255 || b > 255 || c > 255) {
        throw new DOMException("btoa: the string contains characters outside of the Latin1 range", "InvalidCharacterError");
      }
      const triple = (a << 16) | (b << 8) | c;
      out += ALPHABET[(triple >> 18) & 63] + ALPHABET[(triple >> 12) & 63];
      out += i + 1 < text.length ? ALPHABET[(triple >> 6) & 63] : "=";
      out += i + 2 < text.length ? ALPHABET[triple & 63] : "=";
    }
    return out;
  }

  function atob(data) {
    // Forgiving base64: ASCII whitespace is ignored, padding is optional.
    let text = String(data).replace(/[\t\n\f\r ]/g, "");
    if (text.length % 4 === 0) text = text.replace(/==?$/, "");
    const invalid = () => new DOMException("atob: the string to be decoded is not correctly encoded", "InvalidCharacterError");
    if (text.length % 4 === 1) throw invalid();
    let out = "";
    let buffer = 0;
    let bits = 0;
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      const value = code < 128 ? DECODE[code] : -1;
      if (value < 0) throw invalid();
      buffer = (buffer << 6) | value;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out += String.fromCharCode((buffer >> bits) & 0xff);
      }
    }
    return out;
  }

  // Globals as the platform defines them: writable, configurable, not enumerable.
  internal.install = (target, values) => {
    for (const [name, value] of Object.entries(values)) {
      Object.defineProperty(target, name, { value, writable: true, configurable: true, enumerable: false });
    }
  };

  internal.DOMException = DOMException;
  internal.install(global, { DOMException, TextEncoder, TextDecoder, atob, btoa });
})
