// Never returns: stopped by fuel or by the deadline, whichever comes first.
export default {
  async fetch(request) {
    let spins = 0;
    while (true) {
      spins++;
    }
  }
};
