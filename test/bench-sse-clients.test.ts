/**
 * The benchmark's SSE clients (bench/lib/sse-clients.mjs) parse messages in the read's bytes after the hello: every
 * message must still be found, with its id, however the server's writes and the kernel split the bytes.
 */
import { describe, expect, it } from 'vitest';
import { createServer, type Socket } from 'node:net';
import { openSseClient, SeqTimes } from '../bench/lib/sse-clients.mjs';

const frame = (m: string) => `${Buffer.byteLength(m).toString(16)}\r\n${m}\r\n`;

/** A server sending `bytes` after the request, in pieces of 1..maxPiece bytes, with pauses between some. */
async function serve(bytes: Buffer, maxPiece: number) {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.setNoDelay(true);
    s.once('data', async () => {
      for (let i = 0; i < bytes.length && !s.destroyed; ) {
        const n = 1 + Math.floor(Math.random() * maxPiece);
        s.write(bytes.subarray(i, i + n));
        i += n;
        if (Math.random() < 0.05) await new Promise((r) => setTimeout(r, 1));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe('benchmark SSE clients', () => {
  for (const [label, chunked] of [['HTTP/1.1 chunks', true], ['raw bytes', false]] as const) {
    it(`find every message and its id in ${label} split anywhere`, async () => {
      const messages = Array.from({ length: 300 }, (_, i) => `event: heartbeat\nid: ${1001 + i}\ndata: {"pad":"${'x'.repeat((i * 37) % 1500)}"}\n\n`);
      // A keepalive comment and a message without an id count for nothing.
      messages.splice(100, 0, ': keepalive\n\n', 'event: other\ndata: {}\n\n');
      const hello = 'event: hello\ndata: {"seq":1000}\nretry: 2000\n\n';
      const body = [hello, ...messages].map((m) => (chunked ? frame(m) : m)).join('');
      const head = `HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n${chunked ? 'transfer-encoding: chunked\r\n' : ''}\r\n`;
      for (const maxPiece of [61, 300, 4000]) {
        const server = await serve(Buffer.from(head + body, 'latin1'), maxPiece);
        try {
          const client = openSseClient(server.url, 'token');
          await client.ready;
          const deadline = Date.now() + 10_000;
          while (client.seqs.size < 300 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
          expect([...client.seqs.keys()]).toEqual(Array.from({ length: 300 }, (_, i) => 1001 + i));
          expect(client.received).toBe(300);
          client.close();
        } finally {
          server.close();
        }
      }
    });
  }

  it('SeqTimes keeps a time per seq like a Map, growing past its capacity and below its first seq', () => {
    const times = new SeqTimes(4);
    const map = new Map<number, number>();
    // From the first seq up, past the capacity, one seq twice, then one before the first.
    for (const [seq, t] of [[1001, 1.5], [1003, 2.5], [1004, 3], [1010, 4], [1003, 5], [998, 6]] as const) {
      times.set(seq, t);
      map.set(seq, t);
    }
    expect(times.size).toBe(map.size);
    expect([...times.keys()]).toEqual([...map.keys()].sort((a, b) => a - b));
    for (const seq of [997, 998, 999, 1001, 1002, 1003, 1004, 1010, 1011, 5000]) {
      expect(times.get(seq)).toBe(map.get(seq));
      expect(times.has(seq)).toBe(map.has(seq));
    }
    expect(new SeqTimes().get(1)).toBeUndefined();
  });
});
