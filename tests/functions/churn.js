// Allocates many times more than it keeps, as a busy function does: each
// round builds a thousand objects, their labels and their JSON, and drops
// them. It checks what it keeps, and grows a string and an array one
// element at a time, whose contents must survive every move.
export default {
  async fetch(request) {
    const rounds = Number(new URL(request.url).searchParams.get("rounds") ?? "40");
    let jsonLength = 0;
    const kept = [];
    for (let round = 0; round < rounds; round++) {
      const items = [];
      for (let i = 0; i < 1000; i++) items.push({ round, i, label: "item-" + i });
      jsonLength += JSON.stringify(items).length;
      if (round % 20 === 0) kept.push(`${items[999].label}@${round}`);
    }
    let grown = "";
    const codes = [];
    for (let i = 0; i < 5000; i++) {
      grown += String.fromCharCode(97 + (i % 26));
      codes.push(i * 3);
    }
    const codesIntact = codes.every((code, i) => code === i * 3);
    return Response.json({ jsonLength, kept, grown: grown.length, sample: grown.slice(0, 28), codesIntact });
  }
};
