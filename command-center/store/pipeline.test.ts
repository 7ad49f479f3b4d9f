import { describe, expect, it } from 'vitest';
import { RecentIds } from './pipeline.js';

describe('RecentIds', () => {
  it('keeps the newest ids up to its bound and forgets the oldest', () => {
    const r = new RecentIds(3);
    for (const [i, id] of ['a', 'b', 'c', 'd'].entries()) r.add(id, i + 1);
    expect(r.get('a')).toBeUndefined();
    expect([r.get('b'), r.get('c'), r.get('d')]).toEqual([2, 3, 4]);
    r.add('c', 9); // re-adding does not take a second slot
    r.add('e', 5);
    expect(r.get('b')).toBeUndefined();
    expect([r.get('c'), r.get('d'), r.get('e')]).toEqual([9, 4, 5]);
  });
});

describe('pipeline de-duplication', () => {
  it('recognises a retry by the same author only; another author claiming the id cannot suppress a fact', async () => {
    const { openJournal } = await import('./journal.js');
    const { createCommitFanout } = await import('./commit-fanout.js');
    const { createPipeline, recentIdsProjection } = await import('./pipeline.js');
    const { tempDir, quietLogger } = await import('../../test/helpers.js');
    const t = tempDir();
    try {
      const recentIds = new RecentIds();
      const fanout = createCommitFanout({ log: quietLogger });
      fanout.addProjection('recent-ids', recentIdsProjection(recentIds));
      fanout.seal();
      const journal = await openJournal({ dir: t.dir, onCommit: fanout.commit });
      const pipeline = createPipeline({ store: journal, recentIds });
      const squat = await pipeline.submit({ id: 'rcpt-c1', kind: 'note', author: 'token:bot', body: { text: 'mine now' } });
      const real = await pipeline.submit({ id: 'rcpt-c1', kind: 'receipt', author: 'node:web-01', node_id: 'web-01', body: {} });
      const retry = await pipeline.submit({ id: 'rcpt-c1', kind: 'receipt', author: 'node:web-01', node_id: 'web-01', body: {} });
      expect([squat.duplicate, real.duplicate, retry.duplicate]).toEqual([false, false, true]);
      expect(retry.envelope.seq).toBe(real.envelope.seq);
      // Two concurrent submits of one id: one append, both answered with its seq.
      const [a, b] = await Promise.all([
        pipeline.submit({ id: 'n-1', kind: 'note', author: 'token:bot', body: { text: 'x' } }),
        pipeline.submit({ id: 'n-1', kind: 'note', author: 'token:bot', body: { text: 'x' } }),
      ]);
      expect([a.duplicate, b.duplicate]).toEqual([false, true]);
      expect(b.envelope.seq).toBe(a.envelope.seq);
      expect(journal.lastSeq).toBe(3);
      await journal.close();
    } finally {
      t.cleanup();
    }
  });
});

describe('RecentIds (compact window)', () => {
  const key = (i: number) => `node:node-${i % 97}\u0000hb-${i}`;

  it('matches a plain Map-and-ring model through many evictions, chunk drops and re-adds, with non-ASCII keys', () => {
    const max = 1000;
    const r = new RecentIds(max);
    const model = new Map<string, number>();
    const order: string[] = [];
    const add = (k: string, seq: number) => {
      if (!model.has(k)) {
        if (order.length === max) model.delete(order.shift()!);
        order.push(k);
      }
      model.set(k, seq);
      r.add(k, seq);
    };
    // ≈ 60,000 keys of 20-40 bytes: dozens of 1 MiB chunks are not reached, but a long key gets its own chunk.
    for (let i = 0; i < 60_000; i++) {
      add(i % 7 === 0 ? key(i - 500) : key(i), i + 1); // some retries of keys still (or no longer) in the window
      if (i % 5000 === 0) add(`admin\u0000é-${i}-${'x'.repeat(i % 3 === 0 ? 2_000_000 : 10)}`, i + 1);
    }
    for (let i = 59_000; i < 60_000; i++) expect(r.get(key(i))).toBe(model.get(key(i)));
    for (let i = 0; i < 1000; i++) expect(r.get(key(i))).toBe(model.get(key(i)));
    expect(r.get('node:node-1\u0000hb-x')).toBeUndefined();
    // Every key of the model is found, with its seq; none other is.
    for (const [k, seq] of model) expect(r.get(k)).toBe(seq);
    const state = r.exportState();
    expect([...state.seqs].filter((s) => s >= 0).length).toBe(model.size);
  });

  it('exports canonically and imports back to the same window, which then evicts in the same order', () => {
    const a = new RecentIds(50);
    for (let i = 0; i < 130; i++) a.add(key(i), i + 1);
    const frozen = a.freeze();
    for (let i = 130; i < 140; i++) a.add(key(i), i + 1); // after the freeze: not in the frozen export
    const state = frozen();
    const b = new RecentIds(50);
    const keysBefore = Buffer.from(state.keys);
    expect(b.importState(state)).toBe(true); // keys with a buffer of their own are taken, not copied
    expect(b.get(key(129))).toBe(130);
    expect(b.get(key(135))).toBeUndefined();
    expect(a.get(key(135))).toBe(136);
    const c = new RecentIds(50);
    for (let i = 0; i < 130; i++) c.add(key(i), i + 1);
    expect(b.exportState()).toEqual(c.exportState());
    for (let i = 130; i < 200; i++) {
      b.add(key(i), i + 1);
      c.add(key(i), i + 1);
    }
    expect(b.exportState()).toEqual(c.exportState());
    for (let i = 100; i < 200; i++) expect(b.get(key(i))).toBe(i >= 150 ? i + 1 : undefined); // the newest 50
    expect(Buffer.from(state.keys)).toEqual(keysBefore); // new keys went to chunks of the window's own
  });

  it('refuses a state of another bound, with lengths that do not add up, or with a key twice, and stays as it was', () => {
    const a = new RecentIds(4);
    for (const [i, k] of ['a', 'b', 'c'].entries()) a.add(k, i + 1);
    const good = a.exportState();
    const r = new RecentIds(4);
    r.add('z', 7);
    expect(r.importState({ ...good, max: 5 })).toBe(false);
    expect(r.importState({ ...good, keys: good.keys.subarray(1) })).toBe(false);
    expect(r.importState({ ...good, lengths: Uint32Array.from([1, 1, 0, 1]) })).toBe(false); // seq but no key
    expect(r.importState({ ...good, keys: Uint8Array.from([97, 97, 99]) })).toBe(false); // 'a' twice
    expect(r.get('z')).toBe(7);
    expect(r.importState(good)).toBe(true);
    expect([r.get('a'), r.get('b'), r.get('c'), r.get('z')]).toEqual([1, 2, 3, undefined]);
  });
});
