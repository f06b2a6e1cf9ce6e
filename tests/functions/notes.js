// A small notes API the way an app would write one: each signed-in user
// creates, lists, edits and deletes their own notes. Row-level security on
// the `notes` table, not this code, keeps users apart.
export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    const id = url.searchParams.get("id");
    const notes = () => ctx.db.from("notes");
    switch (request.method) {
      case "GET": {
        const { data, error, count } = await notes()
          .select("id,body,created_at", { count: "exact" })
          .order("id", { ascending: true })
          .limit(50);
        return error ? Response.json({ error }, { status: 400 }) : Response.json({ notes: data, count });
      }
      case "POST": {
        const { body } = await request.json();
        const { data, error } = await notes().insert({ body }).select("id,body").single();
        return error ? Response.json({ error }, { status: 403 }) : Response.json(data, { status: 201 });
      }
      case "PATCH": {
        const { body } = await request.json();
        const { data, error } = await notes().update({ body }).eq("id", Number(id)).select("id,body");
        if (error) return Response.json({ error }, { status: 403 });
        return data.length ? Response.json(data[0]) : Response.json({ error: "no such note" }, { status: 404 });
      }
      case "DELETE": {
        const { count, error } = await notes().delete().eq("id", Number(id));
        if (error) return Response.json({ error }, { status: 403 });
        return new Response(null, { status: count ? 204 : 404 });
      }
      default:
        return new Response("method not allowed", { status: 405 });
    }
  },
};
