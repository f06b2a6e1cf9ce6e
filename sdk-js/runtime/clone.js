// structuredClone (HTML Standard, "structured serialize/deserialize").
//
// There is a single realm and no worker boundary, so serialisation and
// deserialisation are fused into one recursive copy. A memory map from
// original to copy, filled in *before* recursing, preserves shared
// references and cycles.
//
// Deliberate choices for edgefn:
// - Objects whose prototype is neither Object.prototype nor null (class
//   instances) throw DataCloneError instead of being silently flattened to
//   plain objects, so a lost prototype never goes unnoticed.
// - SharedArrayBuffer is rejected: without cross-origin isolation browsers do
//   the same, and edgefn has no other agent to share memory with.
(function (native, global, internal) {
  "use strict";

  // Intrinsics captured at start-up: brand checks and copies must not be
  // affected by user code that later patches built-in prototypes.
  const ReflectApply = Reflect.apply;
  const getPrototypeOf = Object.getPrototypeOf;
  const objectKeys = Object.keys;
  const hasOwn = Object.hasOwn;
  const defineProperty = Object.defineProperty;
  const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const objectToString = Object.prototype.toString;
  const ObjectPrototype = Object.prototype;
  const ArrayIsArray = Array.isArray;
  const isView = ArrayBuffer.isView;

  function getter(prototype, name) {
    const descriptor = getOwnPropertyDescriptor(prototype, name);
    return descriptor === undefined ? undefined : descriptor.get;
  }

  const dateValueOf = Date.prototype.valueOf;
  const regExpSource = getter(RegExp.prototype, "source");
  const regExpFlags = getter(RegExp.prototype, "flags");
  const mapSize = getter(Map.prototype, "size");
  const mapForEach = Map.prototype.forEach;
  const mapSet = Map.prototype.set;
  const setSize = getter(Set.prototype, "size");
  const setForEach = Set.prototype.forEach;
  const setAdd = Set.prototype.add;
  const booleanValueOf = Boolean.prototype.valueOf;
  const numberValueOf = Number.prototype.valueOf;
  const stringValueOf = String.prototype.valueOf;
  const bigIntValueOf = BigInt.prototype.valueOf;
  const symbolValueOf = Symbol.prototype.valueOf;
  const arrayBufferByteLength = getter(ArrayBuffer.prototype, "byteLength");
  const arrayBufferSlice = ArrayBuffer.prototype.slice;
  const arrayBufferResizable = getter(ArrayBuffer.prototype, "resizable");
  const arrayBufferMaxByteLength = getter(ArrayBuffer.prototype, "maxByteLength");
  const arrayBufferDetached = getter(ArrayBuffer.prototype, "detached");
  const arrayBufferTransfer = ArrayBuffer.prototype.transfer;
  const sharedArrayBufferByteLength =
    typeof SharedArrayBuffer === "function"
      ? getter(SharedArrayBuffer.prototype, "byteLength")
      : undefined;
  const TypedArrayPrototype = getPrototypeOf(Uint8Array.prototype);
  const typedArrayName = getter(TypedArrayPrototype, Symbol.toStringTag);
  const typedArrayBuffer = getter(TypedArrayPrototype, "buffer");
  const typedArrayByteOffset = getter(TypedArrayPrototype, "byteOffset");
  const typedArrayLength = getter(TypedArrayPrototype, "length");
  const dataViewBuffer = getter(DataView.prototype, "buffer");
  const dataViewByteOffset = getter(DataView.prototype, "byteOffset");
  const dataViewByteLength = getter(DataView.prototype, "byteLength");

  const typedArrayConstructors = new Map();
  for (const constructor of [
    Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array,
    Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array,
    typeof Float16Array === "function" ? Float16Array : null,
  ]) {
    if (constructor !== null) typedArrayConstructors.set(constructor.name, constructor);
  }

  // The error types whose identity survives a clone; anything else
  // becomes a plain Error, as the HTML Standard specifies.
  const errorConstructors = new Map([
    ["Error", Error],
    ["EvalError", EvalError],
    ["RangeError", RangeError],
    ["ReferenceError", ReferenceError],
    ["SyntaxError", SyntaxError],
    ["TypeError", TypeError],
    ["URIError", URIError],
  ]);

  // Brand check: true when `brandGetter` accepts `value` as its receiver,
  // i.e. `value` carries the internal slot the getter reads.
  function hasBrand(value, brandGetter) {
    if (brandGetter === undefined) return false;
    try {
      ReflectApply(brandGetter, value, []);
      return true;
    } catch {
      return false;
    }
  }

  function describe(value) {
    if (typeof value === "function") {
      return `function ${value.name || "(anonymous)"}`;
    }
    if (typeof value === "symbol") return String(value);
    try {
      const prototype = getPrototypeOf(value);
      const constructor = prototype === null ? undefined : prototype.constructor;
      const name = typeof constructor === "function" ? constructor.name : "";
      return `#<${name || "Object"}>`;
    } catch {
      return "#<Object>";
    }
  }

  function dataCloneError(message) {
    return new internal.DOMException(message, "DataCloneError");
  }

  function uncloneable(value) {
    return dataCloneError(`${describe(value)} could not be cloned.`);
  }

  // A plain data property, as CreateDataProperty makes: assignment would
  // run setters (think "__proto__") instead of defining the key.
  function defineData(target, key, value) {
    defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
  }

  // Engines without the ES2024 `detached` getter still refuse to slice a
  // detached buffer, which serves as the fallback test.
  function isDetached(buffer) {
    if (arrayBufferDetached !== undefined) return ReflectApply(arrayBufferDetached, buffer, []);
    try {
      ReflectApply(arrayBufferSlice, buffer, [0, 0]);
      return false;
    } catch {
      return true;
    }
  }

  function cloneArrayBuffer(buffer) {
    if (isDetached(buffer)) {
      throw dataCloneError("A detached ArrayBuffer could not be cloned.");
    }
    if (arrayBufferResizable !== undefined && ReflectApply(arrayBufferResizable, buffer, [])) {
      const byteLength = ReflectApply(arrayBufferByteLength, buffer, []);
      const maxByteLength = ReflectApply(arrayBufferMaxByteLength, buffer, []);
      const copy = new ArrayBuffer(byteLength, { maxByteLength });
      new Uint8Array(copy).set(new Uint8Array(buffer));
      return copy;
    }
    return ReflectApply(arrayBufferSlice, buffer, [0]);
  }

  function cloneValue(value, memory) {
    const type = typeof value;
    if (type === "symbol") throw uncloneable(value);
    if (type === "function") throw uncloneable(value);
    if (type !== "object" || value === null) return value; // other primitives

    const seen = memory.get(value);
    if (seen !== undefined) return seen;

    // Primitive wrapper objects.
    if (hasBrand(value, booleanValueOf)) return remember(memory, value, Object(ReflectApply(booleanValueOf, value, [])));
    if (hasBrand(value, numberValueOf)) return remember(memory, value, Object(ReflectApply(numberValueOf, value, [])));
    if (hasBrand(value, stringValueOf)) return remember(memory, value, Object(ReflectApply(stringValueOf, value, [])));
    if (hasBrand(value, bigIntValueOf)) return remember(memory, value, Object(ReflectApply(bigIntValueOf, value, [])));
    if (hasBrand(value, symbolValueOf)) throw uncloneable(value);

    if (hasBrand(value, dateValueOf)) {
      return remember(memory, value, new Date(ReflectApply(dateValueOf, value, [])));
    }

    // The `source` getter also accepts RegExp.prototype itself.
    if (value !== RegExp.prototype && hasBrand(value, regExpSource)) {
      const source = ReflectApply(regExpSource, value, []);
      const flags = ReflectApply(regExpFlags, value, []);
      return remember(memory, value, new RegExp(source, flags));
    }

    if (hasBrand(value, arrayBufferByteLength)) {
      return remember(memory, value, cloneArrayBuffer(value));
    }
    if (hasBrand(value, sharedArrayBufferByteLength)) throw uncloneable(value);

    if (isView(value)) {
      // Cloning the buffer through `memory` keeps views that shared one
      // buffer sharing one cloned buffer.
      const name = ReflectApply(typedArrayName, value, []);
      if (name !== undefined) {
        const buffer = cloneValue(ReflectApply(typedArrayBuffer, value, []), memory);
        const constructor = typedArrayConstructors.get(name);
        return remember(memory, value, new constructor(
          buffer,
          ReflectApply(typedArrayByteOffset, value, []),
          ReflectApply(typedArrayLength, value, []),
        ));
      }
      const buffer = cloneValue(ReflectApply(dataViewBuffer, value, []), memory);
      return remember(memory, value, new DataView(
        buffer,
        ReflectApply(dataViewByteOffset, value, []),
        ReflectApply(dataViewByteLength, value, []),
      ));
    }

    if (hasBrand(value, mapSize)) {
      const copy = remember(memory, value, new Map());
      // Snapshot the entries first: cloning a key or value runs getters,
      // which could otherwise mutate the map while we walk it.
      const entries = [];
      ReflectApply(mapForEach, value, [(entryValue, entryKey) => entries.push(entryKey, entryValue)]);
      for (let i = 0; i < entries.length; i += 2) {
        ReflectApply(mapSet, copy, [cloneValue(entries[i], memory), cloneValue(entries[i + 1], memory)]);
      }
      return copy;
    }

    if (hasBrand(value, setSize)) {
      const copy = remember(memory, value, new Set());
      const items = [];
      ReflectApply(setForEach, value, [(item) => items.push(item)]);
      for (const item of items) ReflectApply(setAdd, copy, [cloneValue(item, memory)]);
      return copy;
    }

    // [[ErrorData]] is what makes Object.prototype.toString say "Error"
    // (Error.prototype has no @@toStringTag to spoof it).
    if (ReflectApply(objectToString, value, []) === "[object Error]") {
      return cloneError(value, memory);
    }

    if (ArrayIsArray(value)) {
      const copy = remember(memory, value, new Array(value.length));
      copyOwnProperties(value, copy, memory);
      return copy;
    }

    const prototype = getPrototypeOf(value);
    if (prototype !== ObjectPrototype && prototype !== null) throw uncloneable(value);
    // Null-prototype objects come back as ordinary objects, as in browsers.
    const copy = remember(memory, value, {});
    copyOwnProperties(value, copy, memory);
    return copy;
  }

  function remember(memory, original, copy) {
    memory.set(original, copy);
    return copy;
  }

  // Own enumerable string keys, read with [[Get]] (getters run). A key a
  // getter deleted in the meantime is skipped, as in the standard.
  function copyOwnProperties(source, target, memory) {
    const keys = objectKeys(source);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      if (!hasOwn(source, key)) continue;
      defineData(target, key, cloneValue(source[key], memory));
    }
  }

  function cloneError(error, memory) {
    const name = error.name;
    const constructor = errorConstructors.get(name) ?? Error;
    const copy = remember(memory, error, new constructor());
    // Only an own data property counts as a message (no getters run).
    const messageDescriptor = getOwnPropertyDescriptor(error, "message");
    if (messageDescriptor !== undefined && "value" in messageDescriptor) {
      defineProperty(copy, "message", {
        value: String(messageDescriptor.value),
        writable: true,
        configurable: true,
      });
    }
    // The stack string is kept so a cloned error still says where it came
    // from; otherwise the copy's own stack would point into this file.
    const stack = error.stack;
    if (typeof stack === "string") {
      defineProperty(copy, "stack", { value: stack, writable: true, configurable: true });
    } else if (hasOwn(copy, "stack")) {
      delete copy.stack;
    }
    return copy;
  }

  function transferListFrom(options) {
    if (options === undefined || options === null) return [];
    if (typeof options !== "object" && typeof options !== "function") {
      throw new TypeError("structuredClone: options must be an object");
    }
    const transfer = options.transfer;
    if (transfer === undefined) return [];
    if (transfer === null || typeof transfer[Symbol.iterator] !== "function") {
      throw new TypeError("structuredClone: options.transfer must be an iterable of objects");
    }
    const list = [...transfer];
    for (const item of list) {
      if (item === null || (typeof item !== "object" && typeof item !== "function")) {
        throw new TypeError("structuredClone: options.transfer must contain only objects");
      }
    }
    return list;
  }

  // Checks the transfer list up front, so an invalid list detaches nothing.
  function validateTransferList(list) {
    const seen = new Set();
    for (const item of list) {
      if (!hasBrand(item, arrayBufferByteLength)) {
        throw dataCloneError(`${describe(item)} is not transferable; only ArrayBuffer is.`);
      }
      if (seen.has(item)) throw dataCloneError("ArrayBuffer appears more than once in the transfer list.");
      seen.add(item);
      if (isDetached(item)) {
        throw dataCloneError("A detached ArrayBuffer could not be transferred.");
      }
    }
    if (list.length > 0 && typeof arrayBufferTransfer !== "function") {
      throw dataCloneError("Transferring ArrayBuffers is not supported by this engine.");
    }
  }

  function structuredClone(value, options = undefined) {
    if (arguments.length < 1) {
      throw new TypeError("structuredClone: 1 argument required, but only 0 present.");
    }
    const transferList = transferListFrom(options);
    validateTransferList(transferList);
    const copy = cloneValue(value, new Map());
    // Transferred buffers were copied like any other; detaching the
    // originals afterwards gives the observable result of a transfer (the
    // clone owns the bytes, the sender's buffer is empty), and happens only
    // once the whole clone has succeeded.
    for (const buffer of transferList) ReflectApply(arrayBufferTransfer, buffer, []);
    return copy;
  }

  defineProperty(global, "structuredClone", {
    value: structuredClone,
    writable: true,
    configurable: true,
  });
  internal.structuredClone = structuredClone;
});
