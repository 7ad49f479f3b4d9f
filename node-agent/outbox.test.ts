import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { VaultMeshError } from '../protocol/errors.js';
import { tempDir } from '../test/helpers.js';
import { backoffMs, createOutboxSender, isTransient, openOutbox } from './outbox.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});
function file(): string {
  const t = tempDir('vm-outbox-');
  cleanups.push(t.cleanup);
  return join(t.dir, 'outbox.jsonl');
}
const unreachable = () => new VaultMeshError('CC_UNREACHABLE', 'down');

describe('outbox', () => {
  it('keeps order across a reopen and tolerates a torn last line', () => {
    const f = file();
    const o = openOutbox({ file: f });
    o.enqueue('heartbeat', '/api/agent/heartbeat', { id: 'h1' });
    o.enqueue('scan', '/api/agent/scan', { id: 's1' });
    o.enqueue('heartbeat', '/api/agent/heartbeat', { id: 'h2' });
    appendFileSync(f, '{"kind":"heartbeat","pa');
    const logs: string[] = [];
    const again = openOutbox({ file: f, log: (m) => logs.push(m) });
    expect(again.entries().map((e) => (e.body as { id: string }).id)).toEqual(['h1', 's1', 'h2']);
    expect(logs.join()).toMatch(/skipped 1 unreadable/);
    again.shift();
    again.compact();
    expect(openOutbox({ file: f }).entries().map((e) => (e.body as { id: string }).id)).toEqual(['s1', 'h2']);
  });

  it('evicts the oldest heartbeat first, scans only when no heartbeat is left', () => {
    const o = openOutbox({ file: file(), maxEntries: 3 });
    o.enqueue('scan', '/s', { id: 's1' });
    o.enqueue('heartbeat', '/h', { id: 'h1' });
    o.enqueue('heartbeat', '/h', { id: 'h2' });
    o.enqueue('scan', '/s', { id: 's2' });
    expect(o.entries().map((e) => (e.body as { id: string }).id)).toEqual(['s1', 'h2', 's2']);
    o.enqueue('scan', '/s', { id: 's3' });
    expect(o.entries().map((e) => (e.body as { id: string }).id)).toEqual(['s1', 's2', 's3']);
    o.enqueue('scan', '/s', { id: 's4' });
    expect(o.entries().map((e) => (e.body as { id: string }).id)).toEqual(['s2', 's3', 's4']);
  });

  it('is bounded by bytes', () => {
    const f = file();
    const o = openOutbox({ file: f, maxBytes: 2000 });
    for (let i = 0; i < 100; i++) o.enqueue('heartbeat', '/h', { id: `h${i}`, pad: 'x'.repeat(100) });
    expect(o.bytes).toBeLessThanOrEqual(2000);
    expect(readFileSync(f).length).toBeLessThanOrEqual(2000 + 200);
    expect((o.entries().at(-1)!.body as { id: string }).id).toBe('h99');
  });

  it('backoff grows exponentially with full jitter, capped', () => {
    expect(backoffMs(0, { random: () => 1 })).toBe(1000);
    expect(backoffMs(3, { random: () => 1 })).toBe(8000);
    expect(backoffMs(30, { random: () => 1 })).toBe(300_000);
    expect(backoffMs(5, { random: () => 0 })).toBe(250);
    expect(backoffMs(5, { random: () => 0.5 })).toBe(16_000);
  });

  it('classifies errors', () => {
    expect(isTransient(unreachable())).toBe(true);
    expect(isTransient(new VaultMeshError('RATE_LIMITED', 'x', { status: 429 }))).toBe(true);
    expect(isTransient(VaultMeshError.fromAnswer(530, undefined, 'x'))).toBe(true);
    expect(isTransient(new VaultMeshError('NODE_REVOKED', 'x', { status: 403 }))).toBe(true);
    expect(isTransient(new VaultMeshError('VALIDATION_ERROR', 'x', { status: 400 }))).toBe(false);
  });
});

describe('outbox sender', () => {
  it('queues while the center is down, keeps order behind the queue, flushes in order exactly once', async () => {
    const delivered: string[] = [];
    let up = false;
    const post = async <T>(_path: string, body: unknown): Promise<T> => {
      if (!up) throw unreachable();
      delivered.push((body as { id: string }).id);
      return { seq: delivered.length } as T;
    };
    const s = createOutboxSender({ outbox: openOutbox({ file: file() }), post, backoff: () => 10_000 });
    s.start();
    expect(await s.send('heartbeat', '/h', { id: 'a' })).toEqual({ queued: true });
    expect(await s.send('heartbeat', '/h', { id: 'b' })).toEqual({ queued: true });
    expect(await s.send('scan', '/s', { id: 'c' })).toEqual({ queued: true });
    expect(s.outbox.length).toBe(3);
    up = true;
    await s.flush();
    expect(delivered).toEqual(['a', 'b', 'c']);
    expect(s.outbox.length).toBe(0);
    expect(await s.send('heartbeat', '/h', { id: 'd' })).toEqual({ seq: 4 });
    s.stop();
  });

  it('retries on its own after the backoff; drops what the center rejects; never queues when told not to', async () => {
    const delivered: string[] = [];
    let failures = 2;
    const post = async <T>(_path: string, body: unknown): Promise<T> => {
      const id = (body as { id: string }).id;
      if (id === 'bad') throw new VaultMeshError('VALIDATION_ERROR', 'nope', { status: 400 });
      if (failures-- > 0) throw unreachable();
      delivered.push(id);
      return {} as T;
    };
    const logs: string[] = [];
    const s = createOutboxSender({ outbox: openOutbox({ file: file() }), post, backoff: () => 20, log: (m) => logs.push(m) });
    s.start();
    await s.send('heartbeat', '/h', { id: 'x' });
    s.outbox.enqueue('heartbeat', '/h', { id: 'bad' });
    s.outbox.enqueue('heartbeat', '/h', { id: 'y' });
    for (let i = 0; i < 100 && s.outbox.length; i++) await new Promise((r) => setTimeout(r, 10));
    expect(delivered).toEqual(['x', 'y']);
    expect(logs.join('\n')).toMatch(/rejected a queued heartbeat \(VALIDATION_ERROR/);
    failures = 1;
    await expect(s.send('heartbeat', '/h', { id: 'z' }, { canQueue: false })).rejects.toMatchObject({ code: 'CC_UNREACHABLE' });
    expect(s.outbox.length).toBe(0);
    s.stop();
  });

  it('reports its outbox in every heartbeat: entries queued behind it, and buffered entries delivered since it last reported empty', async () => {
    const seen: Array<{ id: string; outbox?: unknown }> = [];
    let up = true;
    const stored = new Set<string>();
    const post = async <T>(_path: string, body: unknown): Promise<T> => {
      if (!up) throw unreachable();
      const b = body as { id: string; outbox?: unknown };
      seen.push(b);
      const duplicate = stored.has(b.id);
      stored.add(b.id);
      return { seq: seen.length, duplicate } as T;
    };
    const s = createOutboxSender({ outbox: openOutbox({ file: file() }), post, backoff: () => 10_000 });
    s.start();
    await s.send('heartbeat', '/h', { id: 'live' });
    expect(seen.at(-1)).toEqual({ id: 'live', outbox: { queued: 0, delivered: 0 } });
    // An outage: two heartbeats and a scan are buffered; then the center answers and the next cycle drains them.
    up = false;
    await s.send('heartbeat', '/h', { id: 'b1' });
    await s.send('scan', '/s', { id: 's1' });
    await s.send('heartbeat', '/h', { id: 'b2' });
    up = true;
    await s.send('heartbeat', '/h', { id: 'b3' }); // queued behind them (the retry timer is pending)
    await s.flush(); // the retry: delivers all four in order
    expect(seen.slice(1)).toEqual([
      { id: 'b1', outbox: { queued: 3, delivered: 1 } },
      { id: 's1' }, // scans carry no report, but count
      { id: 'b2', outbox: { queued: 1, delivered: 3 } },
      { id: 'b3', outbox: { queued: 0, delivered: 4 } },
    ]);
    // Reported empty and stored: the count starts again.
    await s.send('heartbeat', '/h', { id: 'after' });
    expect(seen.at(-1)).toEqual({ id: 'after', outbox: { queued: 0, delivered: 0 } });
    s.stop();
  });

  it('a backlog ending in a scan is reported by the next live heartbeat; a duplicate answer does not reset the count', async () => {
    const seen: Array<{ id: string; outbox?: unknown }> = [];
    let up = true;
    const post = async <T>(_path: string, body: unknown): Promise<T> => {
      if (!up) throw unreachable();
      const b = body as { id: string; outbox?: unknown };
      seen.push(b);
      // The center had stored b2 already (its first answer was lost): a duplicate, stored with its first report.
      return { seq: seen.length, duplicate: b.id === 'b2' } as T;
    };
    const s = createOutboxSender({ outbox: openOutbox({ file: file() }), post, backoff: () => 10_000 });
    s.start();
    up = false;
    await s.send('heartbeat', '/h', { id: 'b1' });
    await s.send('scan', '/s', { id: 's1' });
    up = true;
    await s.flush();
    expect(seen).toEqual([{ id: 'b1', outbox: { queued: 1, delivered: 1 } }, { id: 's1' }]);
    await s.send('heartbeat', '/h', { id: 'live' });
    expect(seen.at(-1)).toEqual({ id: 'live', outbox: { queued: 0, delivered: 2 } });
    up = false;
    await s.send('heartbeat', '/h', { id: 'b2' });
    up = true;
    await s.flush();
    expect(seen.at(-1)).toEqual({ id: 'b2', outbox: { queued: 0, delivered: 1 } });
    await s.send('heartbeat', '/h', { id: 'next' });
    expect(seen.at(-1)).toEqual({ id: 'next', outbox: { queued: 0, delivered: 1 } });
    s.stop();
  });

  it('a center that refuses the report (older than it) gets heartbeats without it, and nothing is lost', async () => {
    const seen: unknown[] = [];
    const post = async <T>(_path: string, body: unknown): Promise<T> => {
      if ((body as { outbox?: unknown }).outbox !== undefined) {
        throw new VaultMeshError('VALIDATION_ERROR', 'invalid request body', { status: 400, details: [{ path: '', message: 'Unrecognized key: "outbox"' }] });
      }
      seen.push(body);
      return { seq: seen.length } as T;
    };
    const logs: string[] = [];
    const s = createOutboxSender({ outbox: openOutbox({ file: file() }), post, backoff: () => 10_000, log: (m) => logs.push(m) });
    s.start();
    expect(await s.send('heartbeat', '/h', { id: 'a' })).toEqual({ seq: 1 });
    expect(await s.send('heartbeat', '/h', { id: 'b' })).toEqual({ seq: 2 });
    expect(seen).toEqual([{ id: 'a' }, { id: 'b' }]);
    expect(logs.filter((l) => l.includes('without it'))).toHaveLength(1);
    s.stop();
  });
});
