// Reads a secret, queries the database and logs: the work a trace should
// show, span by span. `?fail=1` throws with the secret in the message, which
// must reach no span.
export default {
  async fetch(request, env, ctx) {
    const token = env.TRACE_TOKEN;
    console.log("token length", token.length);
    const { data, error } = await ctx.db.from("items").select("id").limit(5);
    if (error) throw new Error(error.message);
    if (new URL(request.url).searchParams.get("fail")) throw new Error(`rejected token ${token}`);
    return Response.json({ rows: data.length });
  },
};
