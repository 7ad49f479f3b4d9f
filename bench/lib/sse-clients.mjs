/**
 * Many raw-socket SSE clients (node:net: far lighter than fetch streams when there are a thousand of them).
 * Each records, per envelope seq it receives, the wall-clock time its message block completed. A client opened
 * with `read: false` pauses its socket after the handshake and never reads again (a dead consumer).
 *
 * A reading client takes its bytes with `onread` into one buffer shared by every client (read callbacks run one at
 * a time), without a Readable stream's machinery or 'data' events, and scans them as latin1 (the markers and ids it
 * looks for are ASCII; the center is sent and sees exactly the same connections): with 1,000 of them in the
 * benchmark's process, its own event-loop delay counts against the figure, so the clients cost it little.
 */
import { connect } from 'node:net';

const wallNow = () => performance.timeOrigin + performance.now();
const SHARED_READ_BUFFER = Buffer.allocUnsafe(256 * 1024);
export function openSseClient(url, token, { read = true, path = '/events', onSeq } = {}) {
  const u = new URL(url);
  let onBytes;
  const sock = read
    ? connect({ host: u.hostname, port: Number(u.port), onread: { buffer: SHARED_READ_BUFFER, callback: (n, b) => onBytes(b.latin1Slice(0, n)) } })
    : connect({ host: u.hostname, port: Number(u.port) });
  const client = { sock, status: 0, hello: false, received: 0, closed: false, seqs: new Map() };
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
export async function openSseClients(url, token, n, { parallel = 100, maxMs = 60_000, read = () => true } = {}) {
  const clients = [];
  const deadline = Date.now() + maxMs;
  for (let i = 0; i < n; i += parallel) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + parallel); j++) {
      const c = openSseClient(url, token, { read: read(j) });
      clients.push(c);
      batch.push(c.ready);
    }
    const left = deadline - Date.now();
    await Promise.race([Promise.all(batch), new Promise((_, rej) => setTimeout(() => rej(new Error(`SSE clients not connected in ${maxMs} ms (${clients.filter((c) => c.hello).length}/${n})`)), Math.max(0, left)).unref())]);
  }
  return clients;
}

export { wallNow };
