export default {
  async fetch(request) {
    const broken = {;
    return new Response("never");
  }
};
