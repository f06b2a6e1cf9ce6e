import test from "node:test";
import assert from "node:assert/strict";
import { loadSection, createNative } from "./load-section.mjs";

// Stand-in for the DOMException that encoding.js defines in the engine.
class DOMException extends Error {
  constructor(message = "", name = "Error") {
    super(message);
    this.name = name;
  }
}

const global = {};
const internal = { DOMException };
loadSection("clone.js", createNative(), global, internal);
const { structuredClone } = global;

function assertDataCloneError(fn, messagePattern) {
  assert.throws(fn, (error) => {
    assert.ok(error instanceof DOMException, `expected DOMException, got ${error}`);
    assert.equal(error.name, "DataCloneError");
    assert.match(error.message, /could not be (cloned|transferred)\.$|not transferable|more than once|not supported/);
    if (messagePattern) assert.match(error.message, messagePattern);
    return true;
  });
}

test("installs its own structuredClone", () => {
  assert.equal(typeof structuredClone, "function");
  assert.notEqual(structuredClone, globalThis.structuredClone);
  assert.equal(internal.structuredClone, structuredClone);
  assert.equal(Object.getOwnPropertyDescriptor(global, "structuredClone").enumerable, false);
  assert.throws(() => structuredClone(), TypeError);
});

test("primitives are returned as is", () => {
  for (const value of [undefined, null, true, false, 0, -0, NaN, Infinity, 42.5, "", "text", 10n, -(2n ** 70n)]) {
    assert.ok(Object.is(structuredClone(value), value), String(value));
  }
});

test("plain objects: own enumerable string keys only, new identity", () => {
  const symbol = Symbol("s");
  const source = { a: 1, nested: { b: [2, 3] }, [symbol]: "skipped" };
  Object.defineProperty(source, "hidden", { value: "skipped", enumerable: false });
  const copy = structuredClone(source);
  assert.notEqual(copy, source);
  assert.notEqual(copy.nested, source.nested);
  assert.deepEqual(copy, { a: 1, nested: { b: [2, 3] } });
  assert.equal(Object.getOwnPropertySymbols(copy).length, 0);
  assert.equal("hidden" in copy, false);
});

test("inherited properties are not copied; null-prototype objects become ordinary", () => {
  const withNullProto = Object.assign(Object.create(null), { x: 1 });
  const copy = structuredClone(withNullProto);
  assert.equal(Object.getPrototypeOf(copy), Object.prototype);
  assert.equal(copy.x, 1);
});

test("getters are invoked and their values stored as data", () => {
  let calls = 0;
  const source = {
    get value() {
      calls++;
      return { computed: true };
    },
  };
  const copy = structuredClone(source);
  assert.equal(calls, 1);
  const descriptor = Object.getOwnPropertyDescriptor(copy, "value");
  assert.deepEqual(descriptor.value, { computed: true });
  assert.equal(descriptor.get, undefined);
});

test("a '__proto__' own key is copied as data, not as a prototype", () => {
  const source = JSON.parse('{"__proto__": {"polluted": true}}');
  const copy = structuredClone(source);
  assert.equal(Object.getPrototypeOf(copy), Object.prototype);
  assert.deepEqual(Object.keys(copy), ["__proto__"]);
  assert.equal(copy.polluted, undefined);
});

test("arrays keep length, holes and extra properties", () => {
  const source = [1, , 3]; // eslint-disable-line no-sparse-arrays
  source.length = 5;
  source.extra = "x";
  const copy = structuredClone(source);
  assert.ok(Array.isArray(copy));
  assert.equal(copy.length, 5);
  assert.equal(1 in copy, false);
  assert.equal(4 in copy, false);
  assert.equal(copy[2], 3);
  assert.equal(copy.extra, "x");
});

test("cycles are preserved", () => {
  const source = { name: "root" };
  source.self = source;
  source.list = [source];
  const copy = structuredClone(source);
  assert.equal(copy.self, copy);
  assert.equal(copy.list[0], copy);
  assert.notEqual(copy, source);
});

test("shared references stay shared", () => {
  const shared = { n: 1 };
  const copy = structuredClone({ a: shared, b: shared, c: [shared] });
  assert.equal(copy.a, copy.b);
  assert.equal(copy.c[0], copy.a);
  assert.notEqual(copy.a, shared);
});

test("Date", () => {
  const date = new Date(Date.UTC(2024, 1, 29, 12));
  const copy = structuredClone(date);
  assert.ok(copy instanceof Date);
  assert.notEqual(copy, date);
  assert.equal(copy.getTime(), date.getTime());
  assert.ok(Number.isNaN(structuredClone(new Date(NaN)).getTime()));
});

test("RegExp keeps source and flags but not lastIndex", () => {
  const regexp = /a+b/giu;
  regexp.lastIndex = 3;
  const copy = structuredClone(regexp);
  assert.ok(copy instanceof RegExp);
  assert.notEqual(copy, regexp);
  assert.equal(copy.source, "a+b");
  assert.equal(copy.flags, "giu");
  assert.equal(copy.lastIndex, 0);
});

test("Map with object keys and values, preserving identity inside the clone", () => {
  const key = { id: 1 };
  const map = new Map([[key, { value: key }], ["plain", 2]]);
  const copy = structuredClone(map);
  assert.ok(copy instanceof Map);
  assert.equal(copy.size, 2);
  const [copiedKey] = copy.keys();
  assert.notEqual(copiedKey, key);
  assert.deepEqual(copiedKey, { id: 1 });
  assert.equal(copy.get(copiedKey).value, copiedKey);
  assert.equal(copy.get(key), undefined);
  assert.equal(copy.get("plain"), 2);
});

test("Set, including a set that contains itself", () => {
  const set = new Set([1, "two", { three: 3 }]);
  set.add(set);
  const copy = structuredClone(set);
  assert.ok(copy instanceof Set);
  assert.equal(copy.size, 4);
  assert.ok(copy.has(copy));
  assert.ok(!copy.has(set));
  assert.ok(copy.has("two"));
});

test("ArrayBuffer is copied, not shared", () => {
  const buffer = new Uint8Array([1, 2, 3]).buffer;
  const copy = structuredClone(buffer);
  assert.ok(copy instanceof ArrayBuffer);
  assert.notEqual(copy, buffer);
  assert.deepEqual([...new Uint8Array(copy)], [1, 2, 3]);
  new Uint8Array(buffer)[0] = 9;
  assert.equal(new Uint8Array(copy)[0], 1);
});

test("typed arrays of every kind keep type, offset and length", () => {
  const constructors = [
    Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array,
    Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array,
  ];
  for (const Constructor of constructors) {
    const buffer = new ArrayBuffer(Constructor.BYTES_PER_ELEMENT * 4);
    const view = new Constructor(buffer, Constructor.BYTES_PER_ELEMENT, 2);
    view[0] = Constructor.name.startsWith("Big") ? 7n : 7;
    const copy = structuredClone(view);
    assert.equal(Object.getPrototypeOf(copy), Constructor.prototype, Constructor.name);
    assert.equal(copy.byteOffset, Constructor.BYTES_PER_ELEMENT);
    assert.equal(copy.length, 2);
    assert.equal(copy.buffer.byteLength, buffer.byteLength);
    assert.equal(copy[0], view[0]);
    assert.notEqual(copy.buffer, buffer);
  }
});

test("views sharing a buffer share one cloned buffer", () => {
  const buffer = new ArrayBuffer(8);
  const bytes = new Uint8Array(buffer);
  const words = new Uint16Array(buffer, 2, 2);
  const dataView = new DataView(buffer, 4, 4);
  const copy = structuredClone({ bytes, words, dataView, buffer });
  assert.equal(copy.bytes.buffer, copy.words.buffer);
  assert.equal(copy.dataView.buffer, copy.buffer);
  assert.equal(copy.bytes.buffer, copy.buffer);
  copy.words[0] = 0xffff;
  assert.equal(copy.bytes[2], 0xff);
  assert.equal(bytes[2], 0);
});

test("DataView keeps offset and length", () => {
  const view = new DataView(new ArrayBuffer(16), 3, 5);
  view.setUint8(0, 42);
  const copy = structuredClone(view);
  assert.ok(copy instanceof DataView);
  assert.equal(copy.byteOffset, 3);
  assert.equal(copy.byteLength, 5);
  assert.equal(copy.getUint8(0), 42);
});

test("primitive wrapper objects", () => {
  const copy = structuredClone([Object(true), Object(1.5), Object("s"), Object(5n)]);
  assert.equal(typeof copy[0], "object");
  assert.equal(copy[0].valueOf(), true);
  assert.equal(copy[1].valueOf(), 1.5);
  assert.ok(copy[2] instanceof String);
  assert.equal(copy[2].valueOf(), "s");
  assert.equal(typeof copy[3], "object");
  assert.equal(copy[3].valueOf(), 5n);
  assertDataCloneError(() => structuredClone(Object(Symbol("s"))));
});

test("errors keep type, message and stack", () => {
  const error = new RangeError("out of range");
  const copy = structuredClone(error);
  assert.ok(copy instanceof RangeError);
  assert.notEqual(copy, error);
  assert.equal(copy.message, "out of range");
  assert.equal(copy.stack, error.stack);
  assert.equal(Object.getOwnPropertyDescriptor(copy, "message").enumerable, false);
  for (const Constructor of [Error, EvalError, ReferenceError, SyntaxError, TypeError, URIError]) {
    assert.equal(Object.getPrototypeOf(structuredClone(new Constructor("m"))), Constructor.prototype);
  }
});

test("errors of other types become plain Error; missing message stays missing", () => {
  class CustomError extends Error {}
  const custom = new CustomError("mine");
  custom.name = "CustomError";
  const copy = structuredClone(custom);
  assert.equal(Object.getPrototypeOf(copy), Error.prototype);
  assert.equal(copy.message, "mine");
  const bare = structuredClone(new TypeError());
  assert.equal(Object.hasOwn(bare, "message"), false);
});

test("functions, symbols and non-cloneable built-ins throw DataCloneError", () => {
  assertDataCloneError(() => structuredClone(function named() {}), /named/);
  assertDataCloneError(() => structuredClone(() => {}));
  assertDataCloneError(() => structuredClone({ nested: [class {}] }));
  assertDataCloneError(() => structuredClone(Symbol("s")));
  assertDataCloneError(() => structuredClone(new WeakMap()), /WeakMap/);
  assertDataCloneError(() => structuredClone(new WeakSet()));
  assertDataCloneError(() => structuredClone(Promise.resolve()));
});

test("class instances throw DataCloneError naming the class", () => {
  class Point {
    constructor() {
      this.x = 1;
    }
  }
  assertDataCloneError(() => structuredClone(new Point()), /^#<Point> could not be cloned\.$/);
  assertDataCloneError(() => structuredClone({ inside: new Map([["p", new Point()]]) }));
  assertDataCloneError(() => structuredClone(Object.create({ proto: true })));
});

test("SharedArrayBuffer is rejected", () => {
  assertDataCloneError(() => structuredClone(new SharedArrayBuffer(4)));
});

test("options must be an object; transfer must be iterable of ArrayBuffers", () => {
  assert.throws(() => structuredClone(1, 5), TypeError);
  assert.throws(() => structuredClone(1, { transfer: 5 }), TypeError);
  assert.throws(() => structuredClone(1, { transfer: [1] }), TypeError);
  assertDataCloneError(() => structuredClone(1, { transfer: [{}] }));
  const buffer = new ArrayBuffer(1);
  assertDataCloneError(() => structuredClone(1, { transfer: [buffer, buffer] }));
  assert.equal(structuredClone(1, {}), 1);
  assert.equal(structuredClone(1, { transfer: [] }), 1);
  assert.equal(structuredClone(1, null), 1);
});

test("transfer detaches the original buffer (where the engine supports it)", () => {
  const buffer = new Uint8Array([1, 2, 3]).buffer;
  if (typeof ArrayBuffer.prototype.transfer !== "function") {
    assertDataCloneError(() => structuredClone(buffer, { transfer: [buffer] }));
    assert.equal(buffer.byteLength, 3);
    return;
  }
  const copy = structuredClone({ buffer }, { transfer: [buffer] });
  assert.deepEqual([...new Uint8Array(copy.buffer)], [1, 2, 3]);
  assert.equal(buffer.byteLength, 0);
});

test("a failed clone detaches nothing", () => {
  const buffer = new ArrayBuffer(4);
  assertDataCloneError(() => structuredClone({ buffer, bad: () => {} }, { transfer: [buffer] }));
  assert.equal(buffer.byteLength, 4);
});

test("patched built-in prototypes do not change cloning", () => {
  const originalForEach = Map.prototype.forEach;
  const originalSlice = ArrayBuffer.prototype.slice;
  Map.prototype.forEach = () => {
    throw new Error("patched");
  };
  ArrayBuffer.prototype.slice = () => {
    throw new Error("patched");
  };
  try {
    const copy = structuredClone({ map: new Map([[1, 2]]), buffer: new ArrayBuffer(2) });
    assert.equal(copy.map.get(1), 2);
    assert.equal(copy.buffer.byteLength, 2);
  } finally {
    Map.prototype.forEach = originalForEach;
    ArrayBuffer.prototype.slice = originalSlice;
  }
});

test("transfer path with an engine that has ArrayBuffer.prototype.transfer", () => {
  // Node 20 lacks ArrayBuffer.prototype.transfer (quickjs-ng has it), so
  // emulate it with Node's own structuredClone and load a fresh section.
  const descriptor = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, "transfer");
  if (descriptor === undefined) {
    Object.defineProperty(ArrayBuffer.prototype, "transfer", {
      value() {
        return globalThis.structuredClone(this, { transfer: [this] });
      },
      configurable: true,
      writable: true,
    });
  }
  const fresh = {};
  try {
    loadSection("clone.js", createNative(), fresh, { DOMException });
  } finally {
    if (descriptor === undefined) delete ArrayBuffer.prototype.transfer;
  }
  const buffer = new Uint8Array([4, 5, 6]).buffer;
  const view = new Uint8Array(buffer, 1);
  const copy = fresh.structuredClone({ view }, { transfer: [buffer] });
  assert.equal(buffer.byteLength, 0);
  assert.deepEqual([...copy.view], [5, 6]);
  assert.equal(copy.view.buffer.byteLength, 3);
  assertDataCloneError(() => fresh.structuredClone(buffer), /detached/);
});

test("resizable ArrayBuffers stay resizable", { skip: typeof new ArrayBuffer(0).resizable !== "boolean" }, () => {
  const buffer = new ArrayBuffer(2, { maxByteLength: 8 });
  new Uint8Array(buffer)[1] = 7;
  const copy = structuredClone(buffer);
  assert.equal(copy.resizable, true);
  assert.equal(copy.maxByteLength, 8);
  assert.equal(copy.byteLength, 2);
  assert.equal(new Uint8Array(copy)[1], 7);
});
