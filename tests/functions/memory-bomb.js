// Allocates until something stops it: the memory limit must.
export default {
  async fetch(request) {
    const hoard = [];
    while (true) {
      hoard.push(new Array(1024 * 1024).fill(hoard.length));
    }
  }
};
