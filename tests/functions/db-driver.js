// Runs database queries described in the request body through ctx.db, so
// tests can drive the real query builder, host and row-level security with
// many cases from one deployed function. Each query is
//   { "table": "notes", "calls": [["select", "id,body"], ["eq", "id", 1]] }
// and the body is one query, { "queries": [...] } run in order, or
// { "transaction": [...], "throwAtEnd": bool } run inside db.transaction.
async function run(db, query) {
  let builder = db.from(query.table);
  for (const [method, ...args] of query.calls) builder = builder[method](...args);
  const { data, error, count } = await builder;
  return { data, error, count };
}

export default {
  async fetch(request, env, ctx) {
    const body = await request.json();
    try {
      if (body.transaction) {
        const results = await ctx.db.transaction(async (tx) => {
          const results = [];
          for (const query of body.transaction) {
            const result = await run(tx, query);
            if (result.error) throw new Error(`query failed: ${result.error.code}: ${result.error.message}`);
            results.push(result);
          }
          if (body.throwAtEnd) throw new Error("the function threw after writing");
          return results;
        });
        return Response.json({ committed: true, results });
      }
      if (body.queries) {
        const results = [];
        for (const query of body.queries) results.push(await run(ctx.db, query));
        return Response.json(results);
      }
      return Response.json(await run(ctx.db, body));
    } catch (error) {
      // A builder misuse (TypeError) or a rolled-back transaction.
      return Response.json({ thrown: `${error.name}: ${error.message}` }, { status: 422 });
    }
  },
};
