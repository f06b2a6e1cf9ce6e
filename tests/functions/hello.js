// The example: JSON in, a log line, JSON out with a non-200 status.
export default {
  async fetch(request, env, ctx) {
    const { name } = await request.json();
    console.log("greeting", name);
    return Response.json({ hello: name }, { status: 201 });
  }
};
