// Throws at request time, two calls deep; the error is on line 5.
function chargeCard(amount) {
  if (amount > 0) {
    // the next line throws
    throw new Error(`card declined for ${amount}`);
  }
}

export default {
  async fetch(request) {
    chargeCard(42);
    return new Response("unreachable");
  }
};
