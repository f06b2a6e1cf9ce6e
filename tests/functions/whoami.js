// Returns who edgefn says is calling, and whether any credential reached the
// function (it must not: the caller is passed, the token is not).
export default {
  async fetch(request, env, ctx) {
    return Response.json({
      caller: ctx.caller,
      authorization: request.headers.get("authorization"),
      method: request.method,
    });
  },
};
