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
