// Awaits a timer and a chain of microtasks before answering.
export default {
  async fetch(request) {
    const started = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const order = [];
    queueMicrotask(() => order.push("microtask"));
    await null;
    order.push("after await");
    return Response.json({ waitedAtLeast20ms: Date.now() - started >= 19, order });
  }
};
