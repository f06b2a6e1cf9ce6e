// A small JSON API, the shape most functions have: route on the URL's path,
// read a query parameter, a header and a JSON body, answer with JSON. The
// load benchmark runs this same file in edgefn and in workerd.
export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (request.method === "POST" && url.pathname.endsWith("/items")) {
      const item = await request.json();
      if (typeof item.name !== "string") {
        return Response.json({ error: "name is required" }, { status: 400 });
      }
      return Response.json(
        { created: { ...item, tag: url.searchParams.get("tag") }, client: request.headers.get("x-client") },
        { status: 201 },
      );
    }
    return Response.json({ error: "not found", path: url.pathname }, { status: 404 });
  },
};
