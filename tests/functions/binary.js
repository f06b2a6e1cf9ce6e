// Bytes in, bytes out: returns the body reversed, byte for byte.
export default {
  async fetch(request) {
    const bytes = new Uint8Array(await request.arrayBuffer());
    const reversed = bytes.slice().reverse();
    return new Response(reversed, {
      headers: { "content-type": "application/octet-stream", "x-received-bytes": String(bytes.length) },
    });
  }
};
