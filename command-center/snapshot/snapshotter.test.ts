import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../test/helpers.js';
import type { Timers } from '../../lib/timers.js';
import type { Committed } from '../store/envelope-store.js';
import { createSnapshotter } from './snapshotter.js';
import { decodeSnapshot } from './snapshot-format.js';

/** Timers run by hand: `fire()` runs what is due. */
function manualTimers() {
  const pending = new Map<number, { fn: () => void; ms: number }>();
  let next = 1;
  const timers: Timers = {
    setTimeout: (fn, ms) => (pending.set(next, { fn, ms }), next++),
    clearTimeout: (h) => void pending.delete(h as number),
    setInterval: () => 0,
    clearInterval: () => {},
  };
  return {
    timers,
    delays: () => [...pending.values()].map((p) => p.ms),
    fire(ms: number) {
      for (const [id, p] of [...pending]) if (p.ms <= ms) {
        pending.delete(id);
        p.fn();
      }
    },
  };
}

const entry = (seq: number): Committed => ({ envelope: { v: 1, id: `e${seq}`, seq, ts: '2026-01-01T00:00:00.000Z', kind: 'note', author: 'admin', body: {} }, journal: 'events', line: Buffer.from(`{"seq":${seq}}`) });
const settle = () => new Promise((r) => setTimeout(r, 50));

describe('snapshotter', () => {
  function setup(everyEntries: number, everyMs: number) {
    const t = tempDir('vm-snapper-');
    const m = manualTimers();
    let state = 0;
    const s = createSnapshotter({
      file: join(t.dir, 'state.snapshot'),
      everyEntries,
      everyMs,
      timers: m.timers,
      now: () => new Date(0),
      centerVersion: '1.2.3',
      settings: { historySize: 120 },
      capture: () => [Buffer.from('state '), Buffer.from(`at ${state}`)],
      log: { info: () => {}, warn: () => {} },
    });
    const read = () => decodeSnapshot(readFileSync(join(t.dir, 'state.snapshot')), { centerVersion: '1.2.3', settings: { historySize: 120 } });
    return { t, m, s, read, setState: (n: number) => (state = n) };
  }

  it('takes one after every N committed entries, after the commit, covering the last entry', async () => {
    const { t, m, s, read, setState } = setup(3, 0);
    s.projection.replay(entry(1));
    s.projection.commit([entry(2), entry(3)]);
    expect(m.delays()).toEqual([]);
    setState(4);
    s.projection.commit([entry(4)]);
    expect(m.delays()).toEqual([0]);
    m.fire(0);
    await settle();
    const d = read();
    expect(d.ok && d.header.seq).toBe(4);
    expect(d.ok && d.payload.toString()).toBe('state at 4');
    expect(statSync(join(t.dir, 'state.snapshot')).mode & 0o777).toBe(0o600);
    expect(s.last).toMatchObject({ seq: 4 });
    t.cleanup();
  });

  it('by time only when something was committed since the last one, and once more on close', async () => {
    const { t, m, s, read } = setup(0, 60_000);
    s.coveredBy(10, 'ab'.repeat(32)); // started from a snapshot at 10, nothing after it
    s.start();
    m.fire(60_000);
    await settle();
    expect(s.last).toBeUndefined();
    s.projection.commit([entry(11)]);
    m.fire(60_000);
    await settle();
    expect(s.last?.seq).toBe(11);
    s.projection.commit([entry(12)]);
    await s.close();
    const d = read();
    expect(d.ok && d.header.seq).toBe(12);
    expect(m.delays()).toEqual([]);
    t.cleanup();
  });

  it('a failed write is reported and the log stays the truth', async () => {
    const t = tempDir('vm-snapper-');
    const warnings: string[] = [];
    const s = createSnapshotter({
      file: join(t.dir, 'missing-dir', 'state.snapshot'),
      everyEntries: 0,
      everyMs: 0,
      timers: manualTimers().timers,
      now: () => new Date(0),
      centerVersion: '1',
      settings: {},
      capture: () => [Buffer.from('x')],
      log: { info: () => {}, warn: (m) => warnings.push(m) },
    });
    s.projection.commit([entry(1)]);
    expect(await s.snapshot()).toBeUndefined();
    expect(warnings[0]).toMatch(/state snapshot not written/);
    t.cleanup();
  });

  it('keeps the bytes of the last replayed line, though replay reuses the buffer it was read into', async () => {
    const { t, s, read } = setup(0, 0);
    // One read buffer for every line, as replay with reuseBuffers hands them out: each visit overwrites the last.
    const buffer = Buffer.alloc(64);
    const last = Buffer.from('{"seq":2,"the":"last line"}');
    for (const [seq, bytes] of [[1, Buffer.from('{"seq":1,"a":"much longer first line"}')], [2, last]] as const) {
      bytes.copy(buffer);
      s.projection.replay({ ...entry(seq), line: buffer.subarray(0, bytes.length) });
    }
    buffer.fill(0x7a); // the next read
    await s.snapshot();
    const d = read();
    expect(d.ok && d.header.seq).toBe(2);
    expect(d.ok && d.header.line_sha256).toBe(createHash('sha256').update(last).digest('hex'));
    t.cleanup();
  });
});
