// Reports how large the request body was.
export default {
  async fetch(request) {
    const body = await request.arrayBuffer();
    return Response.json({ bytes: body.byteLength });
  }
};
