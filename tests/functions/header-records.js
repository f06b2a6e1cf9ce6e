// Header records, the form most responses set their headers in: names in
// any case, numbers, values to trim, getters, invalid entries.
export default {
  async fetch() {
    let reads = 0;
    const record = {
      "X-Count": 3,
      "x-padded": "  kept inside  ",
      "x-flag": true,
      get "x-read"() {
        reads += 1;
        return "once";
      },
    };
    const error = (make) => {
      try {
        make();
        return null;
      } catch (e) {
        return `${e.name}: ${e.message}`;
      }
    };
    return Response.json(
      {
        mixed: [...new Headers(record)],
        reads,
        badName: error(() => new Headers({ ok: "1", "bad name": "x" })),
        badValue: error(() => new Response("", { headers: { "x-split": "a\nb" } })),
      },
      { headers: { "Cache-Control": "no-store", "X-Items": 42, "x-plain": "yes" } },
    );
  },
};
