// The Web APIs a function author expects, used together.
export default {
  async fetch(request) {
    const url = new URL("https://user:pw@example.com:8080/a/../b/c?x=1&y=two%20words#frag");
    url.searchParams.append("z", "3 4");
    const encoded = new TextEncoder().encode("héllo");
    const clone = structuredClone({ when: new Date(0), list: [1, { deep: true }], map: new Map([["k", "v"]]) });
    return Response.json({
      href: url.href,
      host: url.host,
      pathname: url.pathname,
      y: url.searchParams.get("y"),
      utf8Bytes: encoded.length,
      roundTrip: new TextDecoder().decode(encoded),
      base64: btoa("edgefn"),
      decoded: atob("ZWRnZWZu"),
      cloneIsDate: clone.when instanceof Date,
      cloneMap: clone.map.get("k"),
      headers: [...new Headers({ B: "2", a: "1" })],
    });
  }
};
