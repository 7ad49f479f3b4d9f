/**
 * Many raw-socket SSE clients (node:net: far lighter than fetch streams when there are a thousand of them).
 * Each records, per envelope seq it receives, the wall-clock time its message block completed. A client opened
 * with `read: false` pauses its socket after the handshake and never reads again (a dead consumer).
 *
 * A reading client takes its bytes with `onread` into one buffer shared by every client (read callbacks run one at
 * a time), without a Readable stream's machinery or 'data' events. Up to the `hello` it scans them as latin1 text;
 * after it, as bytes, in place: each message ends at a blank line (`\n\n`), its id is the digits after `\nid: `
 * inside it, and only a message split across reads is copied (the HTTP chunk framing between messages is CR/LF and
 * hex digits, skipped). The markers and ids it looks for are ASCII; the center is sent and sees exactly the same
 * connections: with 1,000 of them in the benchmark's process, its own event-loop delay counts against the figure,
 * so the clients cost it little.
 *
 * Receipt times go into a SeqTimes per client (a Float64Array indexed by seq − first seq, allocated once), not a Map
 * entry per message: with 1,000 clients × 40 heartbeats a Map grew 40,000 entries during the measurement, and the
 * generator's own GC pauses then landed in the measured latency.
 */
import { connect } from 'node:net';

/**
 * Receipt time per envelope seq, Map-like (get/has/set/size/keys) for the callers, stored in a Float64Array from
 * the first seq seen. `capacity` slots are allocated up front; more (or a seq before the first) reallocates, which
 * a benchmark sized right never does.
 */
export class SeqTimes {
  constructor(capacity = 256) {
    this.base = -1;
    this.times = new Float64Array(capacity).fill(NaN);
    this.size = 0;
  }
  set(seq, t) {
    if (this.base < 0) this.base = seq;
    let i = seq - this.base;
    if (i < 0 || i >= this.times.length) i = this.grow(seq);
    if (Number.isNaN(this.times[i])) this.size++;
    this.times[i] = t;
    return this;
  }
  get(seq) {
    const i = seq - this.base;
    if (this.base < 0 || i < 0 || i >= this.times.length) return undefined;
    const t = this.times[i];
    return Number.isNaN(t) ? undefined : t;
  }
  has(seq) {
    return this.get(seq) !== undefined;
  }
  *keys() {
    for (let i = 0; i < this.times.length; i++) if (!Number.isNaN(this.times[i])) yield this.base + i;
  }
  /** Makes room for `seq` (rare); returns its index. */
  grow(seq) {
    const base = Math.min(this.base, seq);
    const end = Math.max(this.base + this.times.length, seq + 1);
    const times = new Float64Array(Math.max(end - base, this.times.length * 2)).fill(NaN);
    times.set(this.times, this.base - base);
    this.times = times;
    this.base = base;
    return seq - base;
  }
}

const wallNow = () => performance.timeOrigin + performance.now();
const SHARED_READ_BUFFER = Buffer.allocUnsafe(256 * 1024);
const BLANK_LINE = Buffer.from('\n\n');
const ID_FIELD = Buffer.from('\nid: ');

/** Whether `bytes` holds only CR and LF (what is left between messages once the chunk's framing is stripped). */
function onlyLineBreaks(bytes, from, to) {
  for (let i = from; i < to; i++) if (bytes[i] !== 0x0a && bytes[i] !== 0x0d) return false;
  return true;
}

export function openSseClient(url, token, { read = true, path = '/events', onSeq, capacity } = {}) {
  const u = new URL(url);
  let onBytes;
  const sock = read
    ? connect({ host: u.hostname, port: Number(u.port), onread: { buffer: SHARED_READ_BUFFER, callback: (n, b) => (client.hello ? onMessageBytes(n, b) : onBytes(b.latin1Slice(0, n))) } })
    : connect({ host: u.hostname, port: Number(u.port) });
  const client = { sock, status: 0, hello: false, received: 0, closed: false, seqs: new SeqTimes(capacity) };
  let buf = '';
  let headerDone = false;
  let resolveHello;
  let rejectHello;
  client.ready = new Promise((res, rej) => ((resolveHello = res), (rejectHello = rej)));
  sock.on('connect', () => {
    sock.write(`GET ${path} HTTP/1.1\r\nHost: ${u.host}\r\nAuthorization: Bearer ${token}\r\nAccept: text/event-stream\r\n\r\n`);
  });
  if (!read) sock.setEncoding('latin1');
  onBytes = (chunk) => {
    const t = wallNow();
    buf += chunk;
    if (!headerDone) {
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      client.status = Number(/^HTTP\/1\.1 (\d{3})/.exec(buf)?.[1] ?? 0);
      headerDone = true;
      buf = buf.slice(end + 4);
      if (client.status !== 200) rejectHello(new Error(`SSE status ${client.status}`));
    }
    let idx;
    while ((idx = buf.indexOf('\n\n')) !== -1) {
      const block = buf.slice(0, idx);
      buf = buf.slice(idx + 2);
      if (!client.hello && block.includes('event: hello')) {
        client.hello = true;
        resolveHello();
        if (!read) sock.pause(); // never read again: the kernel buffers fill, then the center must cope
        continue;
      }
      const m = /(?:^|\n)id: (\d+)/.exec(block);
      if (m) {
        const seq = Number(m[1]);
        client.received++;
        client.seqs.set(seq, t);
        onSeq?.(seq, t, client);
      }
    }
    // Past the hello a reading client goes on in bytes: what this read left unfinished goes with it.
    if (read && client.hello) {
      if (/[^\r\n]/.test(buf)) carry = Buffer.from(buf, 'latin1');
      buf = '';
    }
  };
  // After the hello: messages found in the read's bytes where they lie. `carry` holds the start of a message that
  // the read ended inside (copied: the read buffer is shared).
  let carry;
  const onMessageBytes = (n, shared) => {
    const t = wallNow();
    let bytes = shared.subarray(0, n);
    if (carry) {
      bytes = Buffer.concat([carry, bytes]);
      carry = undefined;
    }
    let pos = 0;
    for (;;) {
      const end = bytes.indexOf(BLANK_LINE, pos);
      if (end === -1) break;
      // (From the blank line's own LF: a message may start with its id line.)
      let at = bytes.indexOf(ID_FIELD, pos === 0 ? 0 : pos - 1);
      if (at !== -1 && at < end) {
        at += ID_FIELD.length;
        let seq = 0;
        let digits = 0;
        for (let c = bytes[at]; c >= 0x30 && c <= 0x39; c = bytes[++at]) {
          seq = seq * 10 + (c - 0x30);
          digits++;
        }
        if (digits) {
          client.received++;
          client.seqs.set(seq, t);
          onSeq?.(seq, t, client);
        }
      }
      pos = end + 2;
    }
    if (pos < bytes.length && !onlyLineBreaks(bytes, pos, bytes.length)) carry = Buffer.from(bytes.subarray(pos));
  };
  if (!read) sock.on('data', onBytes);
  sock.on('error', (err) => rejectHello(err));
  sock.on('close', () => {
    client.closed = true;
    rejectHello(new Error('closed before hello'));
  });
  client.close = () => sock.destroy();
  return client;
}

/** Opens `n` clients, `parallel` handshakes at a time; resolves when all said hello, or rejects after `maxMs`. */
export async function openSseClients(url, token, n, { parallel = 100, maxMs = 60_000, read = () => true, capacity } = {}) {
  const clients = [];
  const deadline = Date.now() + maxMs;
  for (let i = 0; i < n; i += parallel) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + parallel); j++) {
      const c = openSseClient(url, token, { read: read(j), capacity });
      clients.push(c);
      batch.push(c.ready);
    }
    const left = deadline - Date.now();
    await Promise.race([Promise.all(batch), new Promise((_, rej) => setTimeout(() => rej(new Error(`SSE clients not connected in ${maxMs} ms (${clients.filter((c) => c.hello).length}/${n})`)), Math.max(0, left)).unref())]);
  }
  return clients;
}

export { wallNow };
