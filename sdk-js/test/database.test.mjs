import { test } from "node:test";
import assert from "node:assert/strict";
import { loadRuntime, fakeDatabase, dispatchToEnd } from "./harness.mjs";

function setup(answer) {
  const runtime = loadRuntime();
  const fake = fakeDatabase(runtime.native, answer);
  return { runtime, fake, db: runtime.internal.makeDatabase(), DatabaseError: runtime.internal.DatabaseError };
}

/** The plan the host receives, with every key at its default unless given. */
function plan(fields) {
  return {
    table: "orders", action: "select", columns: null, filters: [], order: [], limit: null, offset: null, count: null,
    head: false, single: null, rows: null, patch: null, on_conflict: null, ignore_duplicates: false, returning: false,
    ...fields,
  };
}

/** Runs `build(db)` against the fake and returns the one plan it sent. */
async function planOf(build) {
  const { db, fake } = setup();
  await build(db);
  assert.equal(fake.plans().length, 1);
  return fake.plans()[0];
}

const filtersOf = async (build) => (await planOf(build)).filters;
const orFilter = async (text) => (await filtersOf((db) => db.from("orders").select().or(text)))[0].or;

function throwsType(fn, pattern) {
  assert.throws(fn, (error) => error instanceof TypeError && pattern.test(error.message));
}

// ---------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------

test("select(): every key of the plan is sent, snake_case, with its default", async () => {
  const { db, fake } = setup();
  await db.from("orders").select();
  assert.deepEqual(fake.plans(), [plan({})]);
  assert.deepEqual(Object.keys(fake.plans()[0]), Object.keys(plan({})));
});

test("select(): column lists are trimmed; * and empty mean every column", async () => {
  assert.deepEqual((await planOf((db) => db.from("orders").select("id, total ,\n created_at"))).columns, ["id", "total", "created_at"]);
  assert.equal((await planOf((db) => db.from("orders").select("*"))).columns, null);
  assert.equal((await planOf((db) => db.from("orders").select(" "))).columns, null);
  assert.deepEqual(
    await planOf((db) => db.from("orders").select("*", { count: "exact", head: true })),
    plan({ count: "exact", head: true }),
  );
});

test("select(): embedding, aliases, casts and JSON paths are refused at the call, saying why", () => {
  const { db } = setup();
  for (const columns of ["id, author(name)", "author!inner(id)", "total:amount", "total::text", "data->name", "count()"]) {
    throwsType(() => db.from("orders").select(columns), /not a plain column name.*does not support embedded resources/);
  }
  throwsType(() => db.from("orders").select("id,,total"), /empty column name/);
  throwsType(() => db.from("orders").select("id, *"), /cannot be combined/);
  throwsType(() => db.from("orders").select(["id"]), /columns must be a string/);
  throwsType(() => db.from("orders").select("*", { count: "planned" }), /count must be "exact"/);
  throwsType(() => db.from("orders").select("*", { head: "yes" }), /head must be true or false/);
  throwsType(() => db.from("orders").select("*", { cout: "exact" }), /unknown option "cout"; it takes count, head/);
  throwsType(() => db.from("orders").select().select("id"), /already called/);
  throwsType(() => db.from(""), /table name must be a non-empty string/);
});

test("comparison filters: one entry each, ANDed in call order", async () => {
  const filters = await filtersOf((db) =>
    db.from("orders").select()
      .eq("status", "paid").neq("region", "eu").gt("total", 10).gte("total", 10.5).lt("items", 3).lte("items", 4)
      .like("name", "a%").ilike("email", "*@EXAMPLE.com").in("id", [1, 2, "3"]).is("deleted_at", null).is("flag", false),
  );
  assert.deepEqual(filters, [
    { column: "status", op: "eq", value: "paid" },
    { column: "region", op: "neq", value: "eu" },
    { column: "total", op: "gt", value: 10 },
    { column: "total", op: "gte", value: 10.5 },
    { column: "items", op: "lt", value: 3 },
    { column: "items", op: "lte", value: 4 },
    { column: "name", op: "like", value: "a%" },
    { column: "email", op: "ilike", value: "%@EXAMPLE.com" }, // * is PostgREST's %
    { column: "id", op: "in", value: [1, 2, "3"] },
    { column: "deleted_at", op: "is", value: null },
    { column: "flag", op: "is", value: false },
  ]);
});

test("not(), match() and filter() build the same shapes; filter() and not() read PostgREST text for in/is", async () => {
  const filters = await filtersOf((db) =>
    db.from("orders").select()
      .not("status", "eq", "void").not("id", "in", "(5,6,7)").not("paid_at", "is", null)
      .match({ region: "eu", tier: 2 })
      .filter("total", "gt", 5).filter("status", "not.in", '("a,b",c)').filter("deleted_at", "is", "null").filter("id", "in", [1]),
  );
  assert.deepEqual(filters, [
    { not: { column: "status", op: "eq", value: "void" } },
    { not: { column: "id", op: "in", value: [5, 6, 7] } },
    { not: { column: "paid_at", op: "is", value: null } },
    { column: "region", op: "eq", value: "eu" },
    { column: "tier", op: "eq", value: 2 },
    { column: "total", op: "gt", value: 5 },
    { not: { column: "status", op: "in", value: ["a,b", "c"] } },
    { column: "deleted_at", op: "is", value: null },
    { column: "id", op: "in", value: [1] },
  ]);
});

test("filter values: Dates and bytes are converted; what the host cannot compare is refused", async () => {
  const filters = await filtersOf((db) =>
    db.from("orders").select().gt("created_at", new Date(Date.UTC(2026, 0, 31, 12))).eq("hash", new Uint8Array([1, 2, 255])),
  );
  assert.deepEqual(filters.map((f) => f.value), ["2026-01-31T12:00:00.000Z", "AQL/"]);

  const { db } = setup();
  const q = db.from("orders").select();
  throwsType(() => q.eq("status", null), /is null, which never compares equal in SQL; use \.is\(column, null\)/);
  throwsType(() => q.eq("status", undefined), /value for "status" is undefined/);
  throwsType(() => q.eq("total", 10n), /bigint; convert it with Number\(\) or String\(\)/);
  throwsType(() => q.eq("meta", { a: 1 }), /is an object; compare with a string/);
  throwsType(() => q.gt("total", NaN), /NaN, which JSON cannot carry/);
  throwsType(() => q.in("id", "1,2"), /in\(\) takes an array/);
  throwsType(() => q.in("id", [1, null]), /value for "id"\[1\] is null/);
  throwsType(() => q.is("flag", "null"), /is\(\) takes null, true or false/);
  throwsType(() => q.like("name", 5), /like\(\) takes a pattern string/);
  throwsType(() => q.eq("", 1), /column name must be a non-empty string/);
  throwsType(() => q.filter("tags", "cs", "{a}"), /unknown operator "cs"; edgefn supports eq, neq/);
  throwsType(() => q.not("id", "in", "(1,2"), /"in" list is missing its "\)"/);
  throwsType(() => q.match(null), /match\(\): pass an object/);
});

test("filters are refused after insert() and upsert(); from() alone has none", () => {
  const { db } = setup();
  throwsType(() => db.from("orders").insert({ id: 1 }).eq("id", 1), /eq\(\): filters apply to select\(\), update\(\) and delete\(\), not to insert\(\)/);
  throwsType(() => db.from("orders").upsert({ id: 1 }).or("id.eq.1"), /not to upsert\(\)/);
  assert.equal(typeof db.from("orders").eq, "undefined");
});

test("insert(): an object is one row; values are converted and undefined keys left out", async () => {
  const bytes = new Uint8Array([104, 105]);
  const sent = await planOf((db) =>
    db.from("orders").insert({
      id: 1, note: undefined, at: new Date(0), photo: bytes, raw: bytes.buffer, meta: { tags: ["a"], skip: undefined }, paid: null,
    }),
  );
  assert.deepEqual(sent, plan({
    action: "insert",
    rows: [{ id: 1, at: "1970-01-01T00:00:00.000Z", photo: "aGk=", raw: "aGk=", meta: { tags: ["a"] }, paid: null }],
  }));
  const many = await planOf((db) => db.from("orders").insert([{ id: 1 }, { id: 2, total: 5 }]).select("id").single());
  assert.deepEqual(many, plan({ action: "insert", rows: [{ id: 1 }, { id: 2, total: 5 }], columns: ["id"], returning: true, single: "one" }));
});

test("insert(): rows are copied at the call, so later changes to them are not sent", async () => {
  const { db, fake } = setup();
  const row = { id: 1 };
  const query = db.from("orders").insert(row);
  row.id = 2;
  await query;
  assert.deepEqual(fake.plans()[0].rows, [{ id: 1 }]);
});

test("insert(): values JSON cannot carry are refused with their path", () => {
  const { db } = setup();
  const cyclic = { id: 1 };
  cyclic.self = { back: cyclic };
  const cases = [
    [{ id: 10n }, /insert\(\): rows\[0\]\.id is a bigint/],
    [[{ id: 1 }, { f() {} }], /rows\[1\]\.f is a function/],
    [{ s: Symbol("x") }, /rows\[0\]\.s is a symbol/],
    [{ n: Infinity }, /rows\[0\]\.n is Infinity/],
    [{ m: new Map() }, /rows\[0\]\.m is a Map; values must be/],
    [{ v: new Int16Array(2) }, /rows\[0\]\.v is a Int16Array/],
    [{ list: [1, undefined] }, /rows\[0\]\.list\[1\] is undefined; use null/],
    [{ d: new Date(NaN) }, /rows\[0\]\.d is an invalid Date/],
    [cyclic, /rows\[0\]\.self\.back refers back to itself/],
    [[], /the array of rows is empty/],
    [[1], /rows\[0\] must be a plain object of column values, not a number/],
    [null, /rows\[0\] must be a plain object/],
  ];
  for (const [values, pattern] of cases) throwsType(() => db.from("orders").insert(values), pattern);
  throwsType(() => db.from("orders").insert({ id: 1 }, { count: "exact" }), /unknown option "count"; it takes no options/);
});

test("update() and delete(): filters, and select() for the changed rows", async () => {
  assert.deepEqual(
    await planOf((db) => db.from("orders").update({ status: "paid", note: undefined }).eq("id", 7).select("id, status")),
    plan({ action: "update", patch: { status: "paid" }, filters: [{ column: "id", op: "eq", value: 7 }], columns: ["id", "status"], returning: true }),
  );
  assert.deepEqual(
    await planOf((db) => db.from("orders").delete().in("id", [1, 2]).select()),
    plan({ action: "delete", filters: [{ column: "id", op: "in", value: [1, 2] }], returning: true }),
  );
  assert.deepEqual(await planOf((db) => db.from("orders").delete().eq("id", 1)), plan({ action: "delete", filters: [{ column: "id", op: "eq", value: 1 }] }));
  const { db } = setup();
  throwsType(() => db.from("orders").update({ note: undefined }), /the patch sets no columns/);
  throwsType(() => db.from("orders").update([{ a: 1 }]), /pass an object of the columns to change, not an array/);
  throwsType(() => db.from("orders").update({ status: "x" }).order("id"), /only select\(\) queries can be ordered or paged, not update\(\)/);
});

test("upsert(): onConflict becomes a column list; ignoreDuplicates is passed on", async () => {
  assert.deepEqual(
    await planOf((db) => db.from("orders").upsert([{ org: 1, slug: "a" }], { onConflict: "org, slug", ignoreDuplicates: true })),
    plan({ action: "upsert", rows: [{ org: 1, slug: "a" }], on_conflict: ["org", "slug"], ignore_duplicates: true }),
  );
  assert.deepEqual(await planOf((db) => db.from("orders").upsert({ id: 1 })), plan({ action: "upsert", rows: [{ id: 1 }] }));
  const { db } = setup();
  throwsType(() => db.from("orders").upsert({ id: 1 }, { onConflict: "id," }), /empty column name/);
  throwsType(() => db.from("orders").upsert({ id: 1 }, { onConflict: ["id"] }), /onConflict must be a string/);
  throwsType(() => db.from("orders").upsert({ id: 1 }, { ignoreDuplicates: 1 }), /ignoreDuplicates must be true or false/);
  throwsType(() => db.from("orders").upsert({ id: 1 }, { defaultToNull: false }), /unknown option "defaultToNull"/);
});

test("order(), limit(), range(), single() and maybeSingle()", async () => {
  assert.deepEqual(
    await planOf((db) => db.from("orders").select().order("created_at", { ascending: false, nullsFirst: false }).order("id").limit(50)),
    plan({ order: [{ column: "created_at", ascending: false, nulls_first: false }, { column: "id", ascending: true }], limit: 50 }),
  );
  assert.deepEqual(await planOf((db) => db.from("orders").select().range(10, 19)), plan({ offset: 10, limit: 10 }));
  assert.deepEqual(await planOf((db) => db.from("orders").select().range(0, 0)), plan({ offset: 0, limit: 1 }));
  assert.equal((await planOf((db) => db.from("orders").select().eq("id", 1).single())).single, "one");
  assert.equal((await planOf((db) => db.from("orders").select().maybeSingle())).single, "maybe");

  const q = setup().db.from("orders").select();
  throwsType(() => q.limit(-1), /limit\(\): the row count must be a whole number of 0 or more/);
  throwsType(() => q.limit(1.5), /whole number/);
  throwsType(() => q.range(5, 4), /to \(4\) is before from \(5\)/);
  throwsType(() => q.order("id", { ascending: "desc" }), /ascending must be true or false/);
  throwsType(() => q.order("id", { foreignTable: "author" }), /"foreignTable" option is not supported: edgefn's database does not support embedded resources/);
  throwsType(() => q.limit(5, { referencedTable: "author" }), /"referencedTable" option is not supported/);
});

// ---------------------------------------------------------------------------
// or(): PostgREST filter strings
// ---------------------------------------------------------------------------

test("or(): terms, nested and()/or(), not. prefixes and in-lists", async () => {
  assert.deepEqual(await orFilter("status.eq.paid,and(total.gt.10,total.lt.20),name.in.(a,b)"), [
    { column: "status", op: "eq", value: "paid" },
    { and: [{ column: "total", op: "gt", value: 10 }, { column: "total", op: "lt", value: 20 }] },
    { column: "name", op: "in", value: ["a", "b"] },
  ]);
  assert.deepEqual(await orFilter("status.not.eq.paid, not.and(a.is.null,or(b.is.true,c.is.false)),id.in.()"), [
    { not: { column: "status", op: "eq", value: "paid" } },
    { not: { and: [{ column: "a", op: "is", value: null }, { or: [{ column: "b", op: "is", value: true }, { column: "c", op: "is", value: false }] }] } },
    { column: "id", op: "in", value: [] },
  ]);
  // Columns named like the keywords are still columns.
  assert.deepEqual(await orFilter("and.eq.1,not.eq.2"), [
    { column: "and", op: "eq", value: 1 },
    { column: "not", op: "eq", value: 2 },
  ]);
});

test("or(): numbers and booleans are typed; codes, big integers, quoted values and eq.null stay strings", async () => {
  const values = (await orFilter('a.eq.10,a.eq.-3.25,a.eq.0,a.eq.true,a.eq.false,a.eq.007,a.eq.12345678901234567890,a.eq."42",a.eq.null,a.eq.1e3,a.eq.,a.in.(1,"2",x,true)'))
    .map((f) => f.value);
  assert.deepEqual(values, [10, -3.25, 0, true, false, "007", "12345678901234567890", "42", "null", "1e3", "", [1, "2", "x", true]]);
  const like = await orFilter("name.like.*smith*,name.ilike.A_1");
  assert.deepEqual(like.map((f) => f.value), ["%smith%", "A_1"]);
});

test("or(): quoted values may hold commas, dots, parentheses, quotes and backslashes", async () => {
  assert.deepEqual(await orFilter('name.eq."a,b",name.eq."x.y.z",name.eq."f(x))",name.eq."say \\"hi\\"",name.eq."back\\\\slash",name.in.("a,b","c)")'), [
    { column: "name", op: "eq", value: "a,b" },
    { column: "name", op: "eq", value: "x.y.z" },
    { column: "name", op: "eq", value: "f(x))" },
    { column: "name", op: "eq", value: 'say "hi"' },
    { column: "name", op: "eq", value: "back\\slash" },
    { column: "name", op: "in", value: ["a,b", "c)"] },
  ]);
  // Unquoted, everything after the operator's dot up to the next comma is the value.
  assert.deepEqual(await orFilter("version.eq.1.2.3,email.eq.a.b@c.d"), [
    { column: "version", op: "eq", value: "1.2.3" },
    { column: "email", op: "eq", value: "a.b@c.d" },
  ]);
});

test("or(): SQL in a value is only ever a string value", async () => {
  assert.deepEqual(await orFilter("name.eq.'; DROP TABLE orders; --"), [{ column: "name", op: "eq", value: "'; DROP TABLE orders; --" }]);
  assert.deepEqual(await orFilter('name.eq."x) OR (1=1"'), [{ column: "name", op: "eq", value: "x) OR (1=1" }]);
});

test("or(): malformed strings are TypeErrors naming the position", () => {
  const q = setup().db.from("orders").select();
  const cases = [
    ["status.contains.paid", /unknown operator "contains"; edgefn supports eq, neq, gt, gte, lt, lte, like, ilike, in, is at position 7/],
    ["tags.cs.{a}", /unknown operator "cs"/],
    ["status.not.cs.x", /unknown operator "cs".* at position 11/],
    ["status.eq", /expected "\." \(filters are written column\.operator\.value\) at position 9/],
    ["status", /expected "\."/],
    ["a.eq.1,", /expected a filter \(column\.operator\.value\) at position 7/],
    [",a.eq.1", /expected a filter .* at position 0/],
    ['name.eq."open', /this quoted value is never closed at position 8/],
    ['name.eq."a"b', /expected "," but found "b" at position 11/],
    ["name.eq.f(x)", /put the value in double quotes to use \( in it at position 9/],
    ["a.eq.1)", /expected "," but found "\)" at position 6/],
    ["and(a.eq.1", /missing "\)" at position 10/],
    ["and()", /expected a filter .* at position 4/],
    ["id.in.1,2", /"in" takes a list in parentheses/],
    ["id.in.(1,2", /"in" list is missing its "\)" at position 6/],
    ["a.is.maybe", /"is" takes null, true or false at position 5/],
    ['a.is."null"', /"is" takes null, true or false/],
    ["(a.eq.1)", /expected a filter/],
  ];
  for (const [text, pattern] of cases) throwsType(() => q.or(text), pattern);
  throwsType(() => q.or(""), /expects filters as a string/);
  throwsType(() => q.or(["a.eq.1"]), /expects filters as a string, .* not an array/);
  throwsType(() => q.or("a.eq.1", { referencedTable: "x" }), /not supported/);
  // Deep nesting is refused, not a stack overflow.
  throwsType(() => q.or("and(".repeat(5000) + "a.eq.1" + ")".repeat(5000)), /nest deeper than 16 levels/);
});

// ---------------------------------------------------------------------------
// Results and errors
// ---------------------------------------------------------------------------

test("a result is { data, error: null, count } from the host's JSON", async () => {
  const { db } = setup((p) => (p.count ? { data: null, count: 3 } : p.single ? { data: { id: 1 } } : { data: [{ id: 1 }], count: null }));
  assert.deepEqual(await db.from("orders").select(), { data: [{ id: 1 }], error: null, count: null });
  assert.deepEqual(await db.from("orders").select("*", { count: "exact", head: true }), { data: null, error: null, count: 3 });
  assert.deepEqual(await db.from("orders").select().eq("id", 1).single(), { data: { id: 1 }, error: null, count: null });
});

test("a database error is { data: null, error: DatabaseError, count: null }; throwOnError() rejects with it", async () => {
  const { db, DatabaseError } = setup(() => ({ code: "permission-denied", message: "orders: row-level security denies insert" }));
  const result = await db.from("orders").insert({ id: 1 });
  assert.equal(result.data, null);
  assert.equal(result.count, null);
  assert.ok(result.error instanceof DatabaseError);
  assert.ok(result.error instanceof Error);
  assert.equal(result.error.name, "DatabaseError");
  assert.equal(result.error.code, "permission-denied");
  assert.equal(result.error.message, "orders: row-level security denies insert");
  assert.equal(String(result.error), "DatabaseError: orders: row-level security denies insert");
  assert.equal(JSON.stringify({ error: result.error }), '{"error":{"code":"permission-denied","message":"orders: row-level security denies insert"}}');

  const thrown = await db.from("orders").insert({ id: 1 }).throwOnError().then(() => null, (error) => error);
  assert.ok(thrown instanceof DatabaseError);
  assert.equal(thrown.code, "permission-denied");
});

test("a query runs when awaited, again on each await, and never if not awaited", async () => {
  const { db, fake } = setup();
  const query = db.from("orders").select().eq("id", 1);
  db.from("orders").delete().eq("id", 1); // built, never awaited
  assert.equal(fake.plans().length, 0);
  await query;
  await query;
  assert.equal(fake.plans().length, 2, "like supabase-js: each then() sends the query");
});

test("then(): returns a real Promise; callback errors and host exceptions propagate", async () => {
  const { db, runtime } = setup();
  const promise = db.from("orders").select().then((result) => result.data);
  assert.ok(promise instanceof Promise);
  assert.deepEqual(await promise, []);
  await assert.rejects(db.from("orders").select().then(() => { throw new RangeError("mine"); }), RangeError);
  runtime.native.dbExecute = () => { throw new Error("host trap"); };
  await assert.rejects(async () => { await db.from("orders").select(); }, /host trap/);
  assert.deepEqual(await Promise.all([db.from("a").select().then(null, (e) => e.message)]), ["host trap"]);
});

test("a builder chain is one mutable query; each action on from() starts a new one", async () => {
  const { db, fake } = setup();
  const table = db.from("orders");
  const select = table.select("id");
  assert.equal(select.eq("id", 1), select, "methods return the same builder, as in supabase-js");
  await table.select("total");
  await select;
  assert.deepEqual(fake.plans().map((p) => [p.columns, p.filters.length]), [[["total"], 0], [["id"], 1]]);
});

// ---------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------

test("transaction(): commits when the callback resolves and returns its value", async () => {
  const { db, fake } = setup();
  const value = await db.transaction(async (tx) => {
    assert.equal(tx, db);
    await tx.from("orders").insert({ id: 1 });
    return "done";
  });
  assert.equal(value, "done");
  assert.deepEqual(fake.calls.map(([kind]) => kind), ["begin", "execute", "commit"]);
});

test("transaction(): rolls back when the callback throws, and rethrows that error", async () => {
  const { db, fake } = setup(() => ({ code: "constraint-violation", message: "duplicate key" }));
  class OutOfStock extends Error {}
  await assert.rejects(db.transaction(async () => { throw new OutOfStock("none left"); }), OutOfStock);
  await assert.rejects(db.transaction(() => { throw new OutOfStock("sync"); }), OutOfStock);
  // A failed query rolls back only if it throws: throwOnError() does that.
  await assert.rejects(
    db.transaction(async (tx) => { await tx.from("orders").insert({ id: 1 }).throwOnError(); }),
    (error) => error.code === "constraint-violation",
  );
  assert.deepEqual(fake.calls.map(([kind]) => kind), ["begin", "rollback", "begin", "rollback", "begin", "execute", "rollback"]);
});

test("transaction(): a nested transaction is refused; the outer one still commits", async () => {
  const { db, fake, DatabaseError } = setup();
  let nested;
  await db.transaction(async (tx) => {
    nested = await tx.transaction(async () => "inner").catch((error) => error);
  });
  assert.ok(nested instanceof DatabaseError);
  assert.equal(nested.code, "transaction-open");
  assert.match(nested.message, /nested transactions are not supported/);
  assert.deepEqual(fake.calls.map(([kind]) => kind), ["begin", "commit"]);
  await db.transaction(async () => {}); // the flag is cleared once it ends
  assert.deepEqual(fake.calls.map(([kind]) => kind), ["begin", "commit", "begin", "commit"]);
});

test("transaction(): begin and commit failures reject with a DatabaseError", async () => {
  const { db, fake, DatabaseError } = setup();
  fake.fail.begin = { code: "unavailable", message: "no database" };
  let ran = false;
  await assert.rejects(db.transaction(async () => { ran = true; }), (error) => error instanceof DatabaseError && error.code === "unavailable");
  assert.equal(ran, false);

  delete fake.fail.begin;
  fake.fail.commit = { code: "serialization-failure", message: "retry" };
  fake.calls.length = 0;
  await assert.rejects(db.transaction(async () => 1), (error) => error instanceof DatabaseError && error.message === "retry");
  assert.deepEqual(fake.calls.map(([kind]) => kind), ["begin", "commit", "rollback"]);
  delete fake.fail.commit;
  assert.equal(await db.transaction(async () => 2), 2, "a failed commit leaves no transaction open");
});

test("transaction(): a failed rollback is logged; the callback's error still wins", async () => {
  const { db, fake, runtime } = setup();
  fake.fail.rollback = { code: "connection-lost", message: "gone" };
  await assert.rejects(db.transaction(async () => { throw new Error("original"); }), /original/);
  assert.deepEqual(runtime.logs, [["error", "db.transaction(): the rollback failed too: connection-lost: gone"]]);
  await assert.rejects(db.transaction("not a function"), /pass a function/);
});

// ---------------------------------------------------------------------------
// ctx.db
// ---------------------------------------------------------------------------

test("ctx.db is one shared, frozen object that reaches the host", async () => {
  const runtime = loadRuntime();
  const fake = fakeDatabase(runtime.native, () => ({ data: [{ id: 1, total: 5 }], count: null }));
  const seen = [];
  const handler = {
    async fetch(request, env, ctx) {
      seen.push(ctx.db);
      const { data, error } = await ctx.db.from("orders").select("id, total").eq("id", 1);
      return runtime.global.Response.json({ data, error });
    },
  };
  const first = await dispatchToEnd(runtime, handler);
  await dispatchToEnd(runtime, handler);
  assert.equal(first.text, '{"data":[{"id":1,"total":5}],"error":null}');
  assert.equal(seen[0], seen[1]);
  assert.ok(Object.isFrozen(seen[0]));
  assert.deepEqual(fake.plans()[0], plan({ columns: ["id", "total"], filters: [{ column: "id", op: "eq", value: 1 }] }));
});
