// Reflects the request so tests can check what reached the function.
export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    const headers = {};
    for (const [name, value] of request.headers) headers[name] = value;
    return Response.json({
      method: request.method,
      url: request.url,
      pathname: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers,
      body: await request.text(),
      invocationId: ctx.invocationId,
      functionName: ctx.functionName,
      version: ctx.version,
      caller: ctx.caller,
    });
  }
};
