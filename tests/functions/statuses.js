// Non-200 statuses, custom and repeated headers, redirects, empty bodies.
export default {
  async fetch(request) {
    const { pathname } = new URL(request.url);
    switch (pathname.split("/").pop()) {
      case "teapot":
        return new Response("short and stout", {
          status: 418,
          headers: { "x-brewed-by": "edgefn", "content-type": "text/plain; charset=utf-8" },
        });
      case "cookies": {
        const headers = new Headers();
        headers.append("set-cookie", "a=1; Path=/");
        headers.append("set-cookie", "b=2; Path=/");
        return new Response("two cookies", { headers });
      }
      case "redirect":
        return Response.redirect("https://example.com/elsewhere", 307);
      case "empty":
        return new Response(null, { status: 204 });
      default:
        return Response.json({ error: "no such page" }, { status: 404 });
    }
  }
};
