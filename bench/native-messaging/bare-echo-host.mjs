// The baseline of the native-messaging benchmark: a host that reads length-prefixed frames from
// stdin and writes each one back unchanged, with Buffer operations only (no JSON, no framework).
const chunks = [];
let buffered = 0;

function take(count) {
  const out = Buffer.allocUnsafe(count);
  let filled = 0;
  while (filled < count) {
    const head = chunks[0];
    const need = count - filled;
    if (head.length <= need) {
      head.copy(out, filled);
      filled += head.length;
      chunks.shift();
    } else {
      head.copy(out, filled, 0, need);
      chunks[0] = head.subarray(need);
      filled += need;
    }
  }
  buffered -= count;
  return out;
}

let expected = -1;
process.stdin.on('data', (chunk) => {
  chunks.push(chunk);
  buffered += chunk.length;
  for (;;) {
    if (expected < 0) {
      if (buffered < 4) return;
      expected = take(4).readUInt32LE(0);
    }
    if (buffered < expected) return;
    const body = take(expected);
    const header = Buffer.allocUnsafe(4);
    header.writeUInt32LE(body.length, 0);
    process.stdout.write(Buffer.concat([header, body]));
    expected = -1;
  }
});
process.stdin.on('end', () => process.exit(0));
