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

  it('imports with the saved hashes and seed when they check out, and hashes again when they do not', () => {
    const a = new RecentIds(300);
    for (let i = 0; i < 700; i++) a.add(key(i), i + 1);
    const state = a.freeze({ index: true })();
    expect(state.index?.hashes.length).toBe(300);
    const { index, ...canonical } = state;
    expect(canonical).toEqual(a.exportState()); // the index is not part of the contents

    const b = new RecentIds(300);
    expect(b.importState(state)).toBe(true);
    expect(b.freeze({ index: true })().index).toEqual(index); // the saved seed and table were taken as they are
    for (let i = 350; i < 700; i++) expect(b.get(key(i))).toBe(i >= 400 ? i + 1 : undefined);
    for (let i = 700; i < 800; i++) b.add(key(i), i + 1);
    expect(b.get(key(799))).toBe(800);
    expect(b.get(key(499))).toBeUndefined(); // evicted

    // A wrong seed, or hashes shifted by one slot: caught by the spot checks, the keys are hashed again.
    const { seed, hashes, table } = index!;
    for (const bad of [{ seed: (seed + 1) >>> 0, hashes, table }, { seed, hashes: Int32Array.from([...hashes.subarray(1), 0]), table }]) {
      const c = new RecentIds(300);
      expect(c.importState({ ...canonical, index: bad })).toBe(true);
      expect(c.freeze({ index: true })().index?.seed).not.toBe(bad.seed); // its own seed kept
      for (let i = 400; i < 700; i++) expect(c.get(key(i))).toBe(i + 1);
      expect(c.exportState()).toEqual(canonical);
    }
    // Tables a lookup could not trust: the table is rebuilt from the saved hashes (same seed, same lookups).
    const at = (t: Int32Array) => [...t.keys()].filter((p) => t[p] !== 0);
    const [p0, p1] = at(table);
    const swapped = table.slice();
    [swapped[p0!], swapped[p1!]] = [table[p1!]!, table[p0!]!]; // each now far from its home, past free entries
    const twice = table.slice();
    twice[p1!] = table[p0!]!; // one slot twice, another missing
    const moved = table.slice();
    moved[(p0! - 1 + table.length) % table.length] = table[p0!]!; // in a free entry before its home
    moved[p0!] = 0;
    for (const badTable of [swapped, twice, moved, table.subarray(1)]) {
      const c = new RecentIds(300);
      expect(c.importState({ ...canonical, index: { seed, hashes, table: badTable } })).toBe(true);
      expect(c.freeze({ index: true })().index?.seed).toBe(seed);
      for (let i = 400; i < 700; i++) expect(c.get(key(i))).toBe(i + 1);
      for (let i = 0; i < 400; i++) expect(c.get(key(i))).toBeUndefined();
    }
    expect(new RecentIds(300).importState({ ...canonical, index: { seed: -1, hashes, table } })).toBe(true);
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
