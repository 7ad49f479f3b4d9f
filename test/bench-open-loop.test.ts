/**
 * The benchmarks' open-loop generator (bench/lib/load.mjs): the requests of its warm-up go out on the same schedule
 * and connections as the rest but are tallied apart, and the measured part keeps its own length and rate.
 */
import { describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { openLoop } from '../bench/lib/load.mjs';

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const requests = (n: number) => Array.from({ length: n }, (_, i) => ({ method: 'POST', path: `/r/${i}`, headers: { 'content-type': 'text/plain' }, body: String(i) }));

describe('openLoop', () => {
  it('sends the warm-up on schedule, tallies it apart and measures only what follows', async () => {
    const seen: number[] = [];
    // Slow answers during the warm-up only, arriving while the measured part runs: they must not reach its
    // latencies. The gap between the two is wide (a timer may fire a millisecond early; a loaded machine delays
    // the quick answers by some milliseconds).
    const srv = await serve((req, res) => {
      const i = Number(req.url!.split('/')[2]);
      seen.push(i);
      req.resume();
      req.on('end', () => setTimeout(() => res.end('ok'), i < 40 ? 250 : 0));
    });
    try {
      const o = await openLoop(srv.url, requests(200), { rate: 200, connections: 32, warmMs: 200, maxMs: 300, drainMs: 2000 });
      expect(o.warm.ok).toBe(40); // 200 req/s for 200 ms
      expect(o.sent).toBe(60); // 300 ms more at 200 req/s
      expect(o.ok).toBe(60);
      expect(seen.length).toBe(100);
      expect(Math.min(...o.warm.latencies)).toBeGreaterThanOrEqual(240);
      expect(Math.max(...o.latencies)).toBeLessThan(200);
      expect(o.offered).toBeGreaterThan(150);
      expect(o.offered).toBeLessThan(250);
    } finally {
      await srv.close();
    }
  });

  it('without a warm-up counts every request', async () => {
    const srv = await serve((req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    try {
      const o = await openLoop(srv.url, requests(100), { rate: 200, connections: 4, maxMs: 250, drainMs: 2000 });
      expect(o.warm.latencies).toHaveLength(0);
      expect(o.sent).toBe(50);
      expect(o.ok).toBe(50);
    } finally {
      await srv.close();
    }
  });
});
