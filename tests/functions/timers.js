// Awaits a timer and a chain of microtasks before answering, and leaves a
// microtask queued that finishes its response after fetch has returned.
export default {
  async fetch(request) {
    const started = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const order = [];
    queueMicrotask(() => order.push("microtask"));
    await null;
    order.push("after await");
    const response = Response.json({ waitedAtLeast20ms: Date.now() - started >= 19, order });
    Promise.resolve().then(() => response.headers.set("x-set-by-a-microtask", "after fetch returned"));
    return response;
  }
};
