// The smallest useful function: a log line and a JSON answer to any request.
export default {
  async fetch(request) {
    console.log("greeting", request.method);
    return Response.json({ hello: "world" });
  }
};
