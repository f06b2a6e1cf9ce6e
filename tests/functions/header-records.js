// Header records, the form most responses set their headers in: names in
// any case, numbers, values to trim, getters, invalid entries; and what the
// engine must tell from a record: iterables of pairs (a Map, an object with
// its own Symbol.iterator), a Headers, a class instance (a record), and
// inits that are no object at all.
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
        fromMap: [...new Headers(new Map([["X-Map", "1"]]))],
        fromIterable: [
          ...new Headers({
            "x-ignored": "a record's entries are not read from an iterable",
            *[Symbol.iterator]() {
              yield ["X-Yielded", "2"];
            },
          }),
        ],
        fromHeaders: [...new Headers(new Headers({ "x-copied": "3" }))],
        fromInstance: [
          ...new Headers(
            new (class {
              constructor() {
                this["X-Own"] = "4";
              }
            })(),
          ),
        ],
        fromFunction: error(() => new Headers(() => {})),
        fromString: error(() => new Headers("x-a: 1")),
      },
      { headers: { "Cache-Control": "no-store", "X-Items": 42, "x-plain": "yes" } },
    );
  },
};
