// database: `ctx.db`, a supabase-js-style query builder. The builder only
// assembles a plan (plain JSON, see FilterBuilder); the host checks it against
// the schema and the caller's row-level security, and binds every value.
// Nothing here is trusted for safety: validation in JS exists to fail early
// with a message that names the builder call.
(function (native, global, internal) {
  "use strict";

  const btoa = global.btoa;

  class DatabaseError extends Error {
    constructor(code, message) {
      super(message);
      this.code = code;
    }
    // Functions often answer `Response.json({ error })`; an Error's message
    // is not enumerable, so it would otherwise serialise as `{ code }` only.
    toJSON() {
      return { code: this.code, message: this.message };
    }
  }
  Object.defineProperty(DatabaseError.prototype, "name", { value: "DatabaseError", writable: true, configurable: true });

  const hostError = (failure) => new DatabaseError(String(failure?.code ?? "internal"), String(failure?.message ?? "the database gave no details"));

  const OPERATORS = new Set(["eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "in", "is"]);
  const OPERATOR_LIST = [...OPERATORS].join(", ");
  const UNSUPPORTED_NESTING = "edgefn's database does not support embedded resources (joins)";

  function kind(value) {
    if (value === null || value === undefined) return String(value);
    if (Array.isArray(value)) return "an array";
    if (typeof value !== "object") return `a ${typeof value}`;
    const name = Object.getPrototypeOf(value)?.constructor?.name;
    return name && name !== "Object" ? `a ${name}` : "an object";
  }

  function isPlainObject(value) {
    const proto = value !== null && typeof value === "object" ? Object.getPrototypeOf(value) : undefined;
    return proto === Object.prototype || proto === null;
  }

  function base64(bytes) {
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x2000) binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x2000));
    return btoa(binary);
  }

  /**
   * `value` as the JSON the host reads. `where` names the value in messages
   * ("insert(): rows[0].total"); `parents` holds the objects being converted,
   * to turn a cycle into an error instead of a stack overflow.
   */
  function toJson(where, value, parents) {
    switch (typeof value) {
      case "string": case "boolean": return value;
      case "number":
        if (Number.isFinite(value)) return value;
        throw new TypeError(`${where} is ${value}, which JSON cannot carry; use null or a finite number`);
      case "bigint": throw new TypeError(`${where} is a bigint; convert it with Number() or String() first (values travel as JSON)`);
      case "undefined": throw new TypeError(`${where} is undefined; use null for "no value"`);
      case "function": case "symbol": throw new TypeError(`${where} is a ${typeof value}, which cannot be stored`);
    }
    if (value === null) return null;
    if (value instanceof Date) {
      if (Number.isNaN(value.getTime())) throw new TypeError(`${where} is an invalid Date`);
      return value.toISOString();
    }
    // Blob columns take base64 text: JSON has no bytes.
    if (value instanceof Uint8Array) return base64(value);
    if (value instanceof ArrayBuffer) return base64(new Uint8Array(value));
    if (parents.includes(value)) throw new TypeError(`${where} refers back to itself (a circular structure)`);
    const array = Array.isArray(value);
    if (!array && !isPlainObject(value)) {
      throw new TypeError(`${where} is ${kind(value)}; values must be strings, numbers, booleans, null, Dates, Uint8Arrays (bytes), or arrays and plain objects of those`);
    }
    parents.push(value);
    const out = array ? value.map((item, i) => toJson(`${where}[${i}]`, item, parents)) : objectJson(where, value, parents);
    parents.pop();
    return out;
  }

  // Keys whose value is undefined are left out, as JSON.stringify does, so
  // `{ note: maybeNote }` leaves the column to its default.
  function objectJson(where, object, parents) {
    const out = {};
    for (const key of Object.keys(object)) {
      if (object[key] !== undefined) out[key] = toJson(`${where}.${key}`, object[key], parents);
    }
    return out;
  }

  /** A value compared against a column: a single JSON scalar. */
  function scalar(where, value) {
    if (value === null) throw new TypeError(`${where} is null, which never compares equal in SQL; use .is(column, null)`);
    if (typeof value === "object" && !(value instanceof Date || value instanceof Uint8Array || value instanceof ArrayBuffer)) {
      throw new TypeError(`${where} is ${kind(value)}; compare with a string, number, boolean, Date or Uint8Array`);
    }
    return toJson(where, value, []);
  }

  function checkColumn(method, column) {
    if (typeof column !== "string" || column === "") throw new TypeError(`${method}: the column name must be a non-empty string, not ${kind(column)}`);
  }

  function checkBoolean(method, name, value) {
    if (typeof value !== "boolean") throw new TypeError(`${method}: ${name} must be true or false, not ${kind(value)}`);
    return value;
  }

  function checkOptions(method, options, allowed) {
    if (options === undefined) return {};
    if (!isPlainObject(options)) throw new TypeError(`${method}: options must be an object, not ${kind(options)}`);
    for (const key of Object.keys(options)) {
      if (key === "foreignTable" || key === "referencedTable") throw new TypeError(`${method}: the "${key}" option is not supported: ${UNSUPPORTED_NESTING}`);
      if (!allowed.includes(key)) throw new TypeError(`${method}: unknown option "${key}"; ${allowed.length ? `it takes ${allowed.join(", ")}` : "it takes no options"}`);
    }
    return options;
  }

  function checkCount(method, name, value) {
    if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`${method}: ${name} must be a whole number of 0 or more, not ${String(value)}`);
  }

  /** `"id, total"` → `["id", "total"]`; `"*"` or nothing → null (every column). */
  function columnList(method, columns) {
    if (columns === undefined) return null;
    if (typeof columns !== "string") throw new TypeError(`${method}: columns must be a string like "id, total", not ${kind(columns)}`);
    if (columns.trim() === "" || columns.trim() === "*") return null;
    const names = columns.split(",").map((name) => name.trim());
    for (const name of names) {
      if (name === "") throw new TypeError(`${method}: there is an empty column name in ${JSON.stringify(columns)}`);
      if (name === "*") throw new TypeError(`${method}: "*" already means every column; it cannot be combined with other names`);
      if (/[():!"]|->/.test(name)) {
        throw new TypeError(
          `${method}: ${JSON.stringify(name)} is not a plain column name. ${UNSUPPORTED_NESTING} such as "author(name)", ` +
            `aliases ("a:b"), casts ("a::text") or JSON paths ("a->b"); select plain columns and query related tables separately`,
        );
      }
    }
    return names;
  }

  // -------------------------------------------------------------------------
  // PostgREST filter strings: or("status.eq.paid,and(total.gt.10,total.lt.20)")
  //
  // term  := [not.](and|or)( list ) | column.[not.]op.value
  // value := "quoted, with \" and \\ escapes" | raw text up to , or ) | in: ( value, ... )
  //
  // The string form has no types, and the host does not coerce, so an unquoted
  // value that reads as a number becomes a number and true/false become
  // booleans. Anything else, and every quoted value, stays a string. A number
  // with a leading zero ("007") or beyond 2^53 stays a string: it is a code,
  // not a quantity, or it would lose digits. `null` means null only after `is`.
  // As in PostgREST, `*` in a like/ilike pattern is the `%` wildcard.
  // -------------------------------------------------------------------------

  const MAX_NESTING = 16;
  const GROUP = /(not\.)?(and|or)\(/y;
  const NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?$/;

  function literal(text) {
    if (text === "true") return true;
    if (text === "false") return false;
    if (NUMBER.test(text)) {
      const number = Number(text);
      if (text.includes(".") || Number.isSafeInteger(number)) return number;
    }
    return text;
  }

  class FilterString {
    constructor(method, text) {
      Object.assign(this, { method, text, pos: 0 });
    }

    error(message, at = this.pos) {
      return new TypeError(`${this.method}: ${message} at position ${at} of ${JSON.stringify(this.text)}`);
    }

    list(depth) {
      if (depth > MAX_NESTING) throw this.error(`and()/or() nest deeper than ${MAX_NESTING} levels`);
      const filters = [];
      for (;;) {
        filters.push(this.term(depth));
        const next = this.text[this.pos];
        if (next === ",") this.pos++;
        else if (next === undefined && depth === 0) return filters;
        else if (next === ")" && depth > 0) return filters; // the group consumes it
        else if (next === undefined) throw this.error(`missing ")"`);
        else throw this.error(`expected "," ${depth > 0 ? 'or ")" ' : ""}but found ${JSON.stringify(next)}`);
      }
    }

    term(depth) {
      while (/\s/.test(this.text[this.pos] ?? "")) this.pos++;
      GROUP.lastIndex = this.pos;
      const group = GROUP.exec(this.text);
      if (group) {
        this.pos += group[0].length;
        const node = { [group[2]]: this.list(depth + 1) };
        this.pos++;
        return group[1] ? { not: node } : node;
      }
      const column = this.segment("a filter (column.operator.value)");
      let at = this.pos;
      let op = this.segment("an operator");
      const negated = op === "not";
      if (negated) [at, op] = [this.pos, this.segment('an operator after "not."')];
      if (!OPERATORS.has(op)) throw this.error(`unknown operator ${JSON.stringify(op)}; edgefn supports ${OPERATOR_LIST}`, at);
      const filter = { column, op, value: this.value(op) };
      return negated ? { not: filter } : filter;
    }

    /** The text up to the next ".", which is consumed. */
    segment(what) {
      const start = this.pos;
      while (this.pos < this.text.length && !'.,()"'.includes(this.text[this.pos])) this.pos++;
      if (this.pos === start) throw this.error(`expected ${what}`);
      if (this.text[this.pos] !== ".") throw this.error('expected "." (filters are written column.operator.value)');
      this.pos++;
      return this.text.slice(start, this.pos - 1);
    }

    value(op) {
      const start = this.pos;
      if (op === "in") {
        if (this.text[this.pos] !== "(") throw this.error('"in" takes a list in parentheses, like id.in.(1,2,3)');
        this.pos++;
        const items = [];
        if (this.text[this.pos] === ")") return this.pos++, items;
        for (;;) {
          const { text, quoted } = this.scalar();
          items.push(quoted ? text : literal(text));
          const next = this.text[this.pos];
          if (next === undefined) throw this.error('the "in" list is missing its ")"', start);
          this.pos++;
          if (next === ")") return items;
          if (next !== ",") throw this.error('expected "," or ")" in the "in" list', this.pos - 1);
        }
      }
      const { text, quoted } = this.scalar();
      if (op === "is") {
        if (!quoted && text === "null") return null;
        if (!quoted && (text === "true" || text === "false")) return text === "true";
        throw this.error('"is" takes null, true or false', start);
      }
      if (op === "like" || op === "ilike") return text.replace(/\*/g, "%");
      return quoted ? text : literal(text);
    }

    scalar() {
      const start = this.pos;
      if (this.text[this.pos] === '"') {
        let out = "";
        for (this.pos++; this.pos < this.text.length; this.pos++) {
          let char = this.text[this.pos];
          if (char === '"') return this.pos++, { text: out, quoted: true };
          if (char === "\\" && this.pos + 1 < this.text.length) char = this.text[++this.pos];
          out += char;
        }
        throw this.error("this quoted value is never closed", start);
      }
      while (this.pos < this.text.length && this.text[this.pos] !== "," && this.text[this.pos] !== ")") {
        const char = this.text[this.pos];
        if (char === "(" || char === '"') throw this.error(`put the value in double quotes to use ${char} in it`);
        this.pos++;
      }
      return { text: this.text.slice(start, this.pos), quoted: false };
    }
  }

  function parseFilters(method, text) {
    if (typeof text !== "string" || text.trim() === "") {
      throw new TypeError(`${method}: expects filters as a string, like "status.eq.paid,total.gt.100", not ${typeof text === "string" ? "an empty one" : kind(text)}`);
    }
    return new FilterString(method, text).list(0);
  }

  // ------------------------------------------------------------ the builder

  /** One condition; `raw` lets in/is take PostgREST text ("(1,2)", "null") as supabase's filter() and not() do. */
  function condition(method, column, op, value, raw) {
    checkColumn(method, column);
    if (!OPERATORS.has(op)) throw new TypeError(`${method}: unknown operator ${JSON.stringify(op)}; edgefn supports ${OPERATOR_LIST}`);
    if (raw && typeof value === "string" && (op === "in" || op === "is")) {
      const parser = new FilterString(method, value);
      const parsed = parser.value(op);
      if (parser.pos !== value.length) throw parser.error("unexpected text after the value");
      return { column, op, value: parsed };
    }
    const where = `${method}: the value for ${JSON.stringify(column)}`;
    switch (op) {
      case "is":
        if (value === null || value === true || value === false) return { column, op, value };
        throw new TypeError(`${where} is ${kind(value)}; is() takes null, true or false`);
      case "in":
        if (!Array.isArray(value)) throw new TypeError(`${where} is ${kind(value)}; in() takes an array`);
        return { column, op, value: value.map((item, i) => scalar(`${where}[${i}]`, item)) };
      case "like": case "ilike":
        if (typeof value !== "string") throw new TypeError(`${where} is ${kind(value)}; ${op}() takes a pattern string`);
        return { column, op, value: value.replace(/\*/g, "%") };
      default:
        return { column, op, value: scalar(where, value) };
    }
  }

  function rowList(method, values) {
    const rows = Array.isArray(values) ? values : [values];
    if (rows.length === 0) throw new TypeError(`${method}: the array of rows is empty`);
    return rows.map((row, i) => {
      if (!isPlainObject(row)) throw new TypeError(`${method}: rows[${i}] must be a plain object of column values, not ${kind(row)}`);
      return objectJson(`${method}: rows[${i}]`, row, [row]);
    });
  }

  /** What `db.from(table)` returns: picks the action, and each pick starts a new query. */
  class QueryBuilder {
    #table;
    constructor(table) {
      this.#table = table;
    }

    select(columns, options) {
      const { count = null, head = false } = checkOptions("select()", options, ["count", "head"]);
      if (count !== null && count !== "exact") throw new TypeError(`select(): count must be "exact" (edgefn has no "planned" or "estimated" counts), not ${JSON.stringify(count)}`);
      return new FilterBuilder(this.#table, "select", { columns: columnList("select()", columns), count, head: checkBoolean("select()", "head", head) });
    }

    insert(values, options) {
      checkOptions("insert()", options, []);
      return new FilterBuilder(this.#table, "insert", { rows: rowList("insert()", values) });
    }

    update(patch, options) {
      checkOptions("update()", options, []);
      if (!isPlainObject(patch)) throw new TypeError(`update(): pass an object of the columns to change, not ${kind(patch)}`);
      const converted = objectJson("update(): patch", patch, [patch]);
      if (Object.keys(converted).length === 0) throw new TypeError("update(): the patch sets no columns");
      return new FilterBuilder(this.#table, "update", { patch: converted });
    }

    upsert(values, options) {
      const { onConflict, ignoreDuplicates = false } = checkOptions("upsert()", options, ["onConflict", "ignoreDuplicates"]);
      checkBoolean("upsert()", "ignoreDuplicates", ignoreDuplicates);
      let conflict = null;
      if (onConflict !== undefined) {
        if (typeof onConflict !== "string") throw new TypeError(`upsert(): onConflict must be a string like "id" or "org, slug", not ${kind(onConflict)}`);
        conflict = onConflict.split(",").map((name) => name.trim());
        if (conflict.includes("")) throw new TypeError(`upsert(): onConflict ${JSON.stringify(onConflict)} has an empty column name`);
      }
      const rows = rowList("upsert()", values);
      return new FilterBuilder(this.#table, "upsert", { rows, on_conflict: conflict, ignore_duplicates: ignoreDuplicates });
    }

    delete(options) {
      checkOptions("delete()", options, []);
      return new FilterBuilder(this.#table, "delete", {});
    }
  }

  /**
   * One query: filters and modifiers mutate it and return it, as in
   * supabase-js. It runs each time it is awaited (each `then` call sends the
   * plan again), and not at all if it is never awaited.
   */
  class FilterBuilder {
    #plan;
    #throws = false;

    constructor(table, action, fields) {
      this.#plan = {
        table, action, columns: null, filters: [], order: [], limit: null, offset: null, count: null, head: false,
        single: null, rows: null, patch: null, on_conflict: null, ignore_duplicates: false, returning: false,
        ...fields,
      };
    }

    #where(method) {
      const action = this.#plan.action;
      if (action === "insert" || action === "upsert") throw new TypeError(`${method}: filters apply to select(), update() and delete(), not to ${action}()`);
      return this.#plan.filters;
    }

    #selectOnly(method) {
      if (this.#plan.action !== "select") throw new TypeError(`${method}: only select() queries can be ordered or paged, not ${this.#plan.action}()`);
      return this.#plan;
    }

    #compare(op, column, value) {
      this.#where(`${op}()`).push(condition(`${op}()`, column, op, value, false));
      return this;
    }

    eq(column, value) { return this.#compare("eq", column, value); }
    neq(column, value) { return this.#compare("neq", column, value); }
    gt(column, value) { return this.#compare("gt", column, value); }
    gte(column, value) { return this.#compare("gte", column, value); }
    lt(column, value) { return this.#compare("lt", column, value); }
    lte(column, value) { return this.#compare("lte", column, value); }
    like(column, pattern) { return this.#compare("like", column, pattern); }
    ilike(column, pattern) { return this.#compare("ilike", column, pattern); }
    in(column, values) { return this.#compare("in", column, values); }
    is(column, value) { return this.#compare("is", column, value); }

    not(column, op, value) {
      this.#where("not()").push({ not: condition("not()", column, op, value, true) });
      return this;
    }

    /** supabase's escape hatch; `op` may be negated as "not.eq". */
    filter(column, op, value) {
      if (typeof op === "string" && op.startsWith("not.")) return this.not(column, op.slice(4), value);
      this.#where("filter()").push(condition("filter()", column, op, value, true));
      return this;
    }

    or(filters, options) {
      checkOptions("or()", options, []);
      this.#where("or()").push({ or: parseFilters("or()", filters) });
      return this;
    }

    match(query) {
      const filters = this.#where("match()");
      if (!isPlainObject(query)) throw new TypeError(`match(): pass an object of column values, not ${kind(query)}`);
      for (const column of Object.keys(query)) filters.push(condition("match()", column, "eq", query[column], false));
      return this;
    }

    /** After insert/update/upsert/delete: return the affected rows' `columns`. */
    select(columns) {
      const plan = this.#plan;
      if (plan.action === "select") throw new TypeError("select() was already called on this query; list every column in that one call");
      plan.columns = columnList("select()", columns);
      plan.returning = true;
      return this;
    }

    order(column, options) {
      const plan = this.#selectOnly("order()");
      checkColumn("order()", column);
      const { ascending = true, nullsFirst } = checkOptions("order()", options, ["ascending", "nullsFirst"]);
      const entry = { column, ascending: checkBoolean("order()", "ascending", ascending) };
      if (nullsFirst !== undefined) entry.nulls_first = checkBoolean("order()", "nullsFirst", nullsFirst);
      plan.order.push(entry);
      return this;
    }

    limit(count, options) {
      const plan = this.#selectOnly("limit()");
      checkOptions("limit()", options, []);
      checkCount("limit()", "the row count", count);
      plan.limit = count;
      return this;
    }

    /** Rows `from` to `to`, both inclusive and counted from 0, as in supabase. */
    range(from, to, options) {
      const plan = this.#selectOnly("range()");
      checkOptions("range()", options, []);
      checkCount("range()", "from", from);
      checkCount("range()", "to", to);
      if (to < from) throw new TypeError(`range(): to (${to}) is before from (${from})`);
      plan.offset = from;
      plan.limit = to - from + 1;
      return this;
    }

    // single(): `data` is exactly one row, an object; none or several is an
    // error. maybeSingle(): one row or null; several is an error.
    single() { this.#plan.single = "one"; return this; }
    maybeSingle() { this.#plan.single = "maybe"; return this; }
    throwOnError() { this.#throws = true; return this; }

    then(onFulfilled, onRejected) {
      const planJson = JSON.stringify(this.#plan);
      const throws = this.#throws;
      // The host call is synchronous; running it inside the executor turns
      // anything it throws into a rejection, like a network error in supabase.
      return new Promise((resolve) => resolve(execute(planJson, throws))).then(onFulfilled, onRejected);
    }
  }

  function execute(planJson, throws) {
    const outcome = native.dbExecute(planJson);
    if (typeof outcome === "string") {
      const { data = null, count = null } = JSON.parse(outcome);
      return { data, error: null, count };
    }
    const error = hostError(outcome);
    if (throws) throw error;
    return { data: null, error, count: null };
  }

  /**
   * The `db` object. It holds no per-request state but the open-transaction
   * flag, and an instance serves one invocation, so one is made per runtime.
   */
  function makeDatabase() {
    let transactionOpen = false;

    async function transaction(callback) {
      if (typeof callback !== "function") throw new TypeError("db.transaction(): pass a function, like async (tx) => { ... }");
      if (transactionOpen) {
        const message = "db.transaction(): a transaction is already open, and nested transactions are not supported; run these queries inside the open transaction instead";
        throw new DatabaseError("transaction-open", message);
      }
      const begun = native.dbBegin();
      if (begun) throw hostError(begun);
      transactionOpen = true;
      let value;
      try {
        value = await callback(db);
      } catch (error) {
        transactionOpen = false;
        const failure = native.dbRollback();
        // The author's error says what went wrong; a failed rollback is secondary.
        if (failure) native.log("error", `db.transaction(): the rollback failed too: ${failure.code}: ${failure.message}`);
        throw error;
      }
      transactionOpen = false;
      const failure = native.dbCommit();
      if (failure) {
        // Some databases keep the transaction open after a failed COMMIT;
        // ending it is the only safe state. Its own outcome adds nothing.
        native.dbRollback();
        throw hostError(failure);
      }
      return value;
    }

    function from(table) {
      if (typeof table !== "string" || table === "") throw new TypeError(`db.from(): the table name must be a non-empty string, not ${kind(table)}`);
      return new QueryBuilder(table);
    }

    const db = Object.freeze({ from, transaction });
    return db;
  }

  internal.DatabaseError = DatabaseError;
  internal.makeDatabase = makeDatabase;
})
