// console: Node-like formatting, output only through native.log so the host
// captures it per invocation.
(function (native, global, internal) {
  "use strict";

  const MAX_MESSAGE = 16 * 1024;
  const MAX_DEPTH = 4;
  const MAX_ITEMS = 100;

  const typedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype);
  const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

  function quote(text) {
    return "'" + text.replace(/\\/g, "\\\\").replace(/'/g, "\\'").replace(/\n/g, "\\n") + "'";
  }

  function keyText(key) {
    return typeof key === "symbol" ? `[${key.toString()}]` : IDENTIFIER.test(key) ? key : quote(key);
  }

  function constructorName(value) {
    const proto = Object.getPrototypeOf(value);
    if (proto === null) return "[Object: null prototype]";
    const ctor = proto.constructor;
    return typeof ctor === "function" && ctor.name ? ctor.name : "Object";
  }

  function list(items, open, close, prefix) {
    const body = items.join(", ");
    if (items.length === 0) return `${prefix}${open}${close}`;
    return `${prefix}${open} ${body} ${close}`;
  }

  function inspect(value, depth, seen) {
    switch (typeof value) {
      case "string": return depth === 0 ? value : quote(value);
      case "number": return Object.is(value, -0) ? "-0" : String(value);
      case "bigint": return `${value}n`;
      case "boolean": case "undefined": return String(value);
      case "symbol": return value.toString();
      case "function": {
        const kind = /^class[\s{]/.test(Function.prototype.toString.call(value)) ? "class" : "Function";
        return value.name ? `[${kind}: ${value.name}]` : `[${kind} (anonymous)]`;
      }
    }
    if (value === null) return "null";
    if (seen.includes(value)) return "[Circular *]";
    if (value instanceof Error) return value.stack ? `${value.name}: ${value.message}\n${value.stack}`.trimEnd() : `${value.name}: ${value.message}`;
    if (value instanceof Date) return isNaN(value) ? "Invalid Date" : value.toISOString();
    if (value instanceof RegExp) return String(value);
    if (value instanceof Promise) return "Promise { <unknown> }";
    const nested = depth + 1;
    if (depth > MAX_DEPTH) return Array.isArray(value) ? "[Array]" : `[${constructorName(value)}]`;
    const inner = seen.concat([value]);
    const show = (v) => inspect(v, nested, inner);
    const cap = (items, total) => (total > MAX_ITEMS ? items.slice(0, MAX_ITEMS).concat([`... ${total - MAX_ITEMS} more items`]) : items);

    if (Array.isArray(value)) {
      const items = [];
      for (let i = 0; i < Math.min(value.length, MAX_ITEMS); i++) items.push(i in value ? show(value[i]) : "<empty>");
      return list(cap(items, value.length), "[", "]", "");
    }
    if (value instanceof Map) {
      const items = [...value].slice(0, MAX_ITEMS).map(([k, v]) => `${show(k)} => ${show(v)}`);
      return list(cap(items, value.size), "{", "}", `Map(${value.size}) `);
    }
    if (value instanceof Set) {
      const items = [...value].slice(0, MAX_ITEMS).map(show);
      return list(cap(items, value.size), "{", "}", `Set(${value.size}) `);
    }
    if (Object.getPrototypeOf(value) && typedArrayPrototype.isPrototypeOf(value)) {
      const items = Array.from(value.subarray(0, MAX_ITEMS), (n) => show(n));
      return list(cap(items, value.length), "[", "]", `${constructorName(value)}(${value.length}) `);
    }
    if (value instanceof ArrayBuffer) return `ArrayBuffer { byteLength: ${value.byteLength} }`;
    const keys = Reflect.ownKeys(value).filter((k) => Object.prototype.propertyIsEnumerable.call(value, k));
    const items = keys.slice(0, MAX_ITEMS).map((k) => `${keyText(k)}: ${show(value[k])}`);
    const name = constructorName(value);
    return list(cap(items, keys.length), "{", "}", name === "Object" ? "" : `${name} `);
  }

  function format(args) {
    let text = "";
    let rest = args;
    if (typeof args[0] === "string" && args.length > 1 && args[0].includes("%")) {
      let index = 1;
      text = args[0].replace(/%[sdifjoOc%]/g, (directive) => {
        if (directive === "%%") return "%";
        if (index >= args.length) return directive;
        const arg = args[index++];
        switch (directive) {
          case "%s": return typeof arg === "string" ? arg : inspect(arg, 1, []);
          case "%d": case "%i": {
            const n = typeof arg === "bigint" ? arg : Number(arg);
            return directive === "%i" && typeof n === "number" ? String(Math.trunc(n)) : String(n);
          }
          case "%f": return String(Number(arg));
          case "%j": try { return JSON.stringify(arg); } catch { return "[Circular]"; }
          case "%c": return "";
          default: return inspect(arg, 1, []);
        }
      });
      rest = args.slice(index);
      if (rest.length) text += " ";
    }
    text += rest.map((arg) => inspect(arg, 0, [])).join(" ");
    return text.length > MAX_MESSAGE ? text.slice(0, MAX_MESSAGE) + "… (truncated)" : text;
  }

  let indent = "";
  const counts = new Map();
  const timers = new Map();

  function emit(level, args) {
    const text = format(args);
    native.log(level, indent ? text.replace(/^/gm, indent) : text);
  }

  const console = {
    log: (...args) => emit("log", args),
    info: (...args) => emit("info", args),
    debug: (...args) => emit("debug", args),
    warn: (...args) => emit("warn", args),
    error: (...args) => emit("error", args),
    trace: (...args) => {
      const stack = new Error().stack.split("\n").slice(1).join("\n");
      emit("debug", ["Trace" + (args.length ? ": " + format(args) : "") + "\n" + stack]);
    },
    assert: (condition, ...args) => {
      if (!condition) emit("error", args.length ? ["Assertion failed:", ...args] : ["Assertion failed"]);
    },
    dir: (value) => emit("log", [value]),
    table: (data) => emit("log", [data]),
    count: (label = "default") => {
      const n = (counts.get(label) || 0) + 1;
      counts.set(label, n);
      emit("info", [`${label}: ${n}`]);
    },
    countReset: (label = "default") => counts.delete(label),
    time: (label = "default") => timers.set(label, native.now()),
    timeLog: (label = "default", ...args) => {
      if (!timers.has(label)) return emit("warn", [`Timer '${label}' does not exist`]);
      emit("info", [`${label}: ${(native.now() - timers.get(label)).toFixed(3)}ms`, ...args]);
    },
    timeEnd: (label = "default") => {
      if (!timers.has(label)) return emit("warn", [`Timer '${label}' does not exist`]);
      emit("info", [`${label}: ${(native.now() - timers.get(label)).toFixed(3)}ms`]);
      timers.delete(label);
    },
    group: (...args) => {
      if (args.length) emit("log", args);
      indent += "  ";
    },
    groupEnd: () => {
      indent = indent.slice(2);
    },
  };
  console.groupCollapsed = console.group;

  internal.inspect = (value) => inspect(value, 0, []);
  internal.install(global, { console });
})
