// Unbounded recursion.
function descend(depth) {
  return descend(depth + 1) + 1;
}

export default {
  async fetch(request) {
    return new Response(String(descend(0)));
  }
};
