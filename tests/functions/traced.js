// Reads a secret, queries the database, logs and (with `?upstream=<url>`)
// calls another service: the work a trace should show, span by span.
// `?fail=1` throws with the secret in the message, which must reach no span.
export default {
  async fetch(request, env, ctx) {
    const token = env.TRACE_TOKEN;
    console.log("token length", token.length);
    const { data, error } = await ctx.db.from("items").select("id").limit(5);
    if (error) throw new Error(error.message);
    const params = new URL(request.url).searchParams;
    if (params.get("fail")) throw new Error(`rejected token ${token}`);
    const upstream = params.get("upstream");
    if (upstream) {
      const answer = await fetch(upstream, { headers: { authorization: `Bearer ${token}` } });
      if (!answer.ok) throw new Error(`the upstream answered ${answer.status}`);
    }
    return Response.json({ rows: data.length });
  },
};
