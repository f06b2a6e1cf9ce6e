// Builds 20,000 small objects per request: its memory grows about 3 MB past a
// fresh instance's, which makes it a large function to the sandbox.
export default {
  async fetch() {
    const items = [];
    for (let i = 0; i < 20000; i++) items.push({ i, label: "item " + i });
    return Response.json({ items: items.length, last: items[items.length - 1].label });
  }
};
