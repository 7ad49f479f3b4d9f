/**
 * The `EnvelopeStore` contract (command-center/store/envelope-store.ts) as one suite, run against every store:
 * jsonl-store.test.ts and postgres-store.test.ts call it with their own way to make an empty store.
 */
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../protocol/canonical-json.js';
import type { EnvelopeDraft, JournalName } from '../protocol/envelope.js';
import { claimKey, type Committed, type EnvelopeStore, type TailFrom, type TailOptions } from '../command-center/store/envelope-store.js';

export const T0 = Date.parse('2025-03-01T00:00:00Z');

export interface StoreUnderTest {
  /** A fresh empty place for a store (a log dir, a database URL). */
  newLocation(): Promise<string>;
  create(location: string, deps: { now: () => Date; onCommit: (batch: Committed[]) => void }): EnvelopeStore;
  /** Registers a cleanup for after the test. */
  onCleanup(fn: () => unknown): void;
}

export const hb = (i: number): EnvelopeDraft => ({ kind: 'heartbeat', node_id: 'n1', author: 'node:n1', body: { i } });
export const note = (i: number): EnvelopeDraft => ({ kind: 'note', author: 'op', body: { i } });
export const scan = (i: number): EnvelopeDraft => ({ id: `scan-${i}`, kind: 'scan', node_id: 'n1', author: 'node:n1', body: { i } });

export async function tailSeqs(store: EnvelopeStore, from: TailFrom, opts?: TailOptions & { stopAfter?: number }): Promise<number[]> {
  const out: number[] = [];
  await store.tail(
    from,
    (e) => {
      out.push(e.envelope.seq);
      return opts?.stopAfter === undefined || out.length < opts.stopAfter;
    },
    opts,
  );
  return out;
}

export function storeContract(name: string, sut: StoreUnderTest): void {
  async function openStore(location: string) {
    const commits: Committed[][] = [];
    let t = T0;
    const store = sut.create(location, { now: () => new Date((t += 1000)), onCommit: (b) => commits.push(b) });
    const replayed: Committed[] = [];
    const report = await store.replay((e) => replayed.push(e));
    sut.onCleanup(() => store.close());
    return { store, commits, replayed, report };
  }

  describe(`${name}: the EnvelopeStore contract`, () => {
    it('append resolves with the committed envelopes and their canonical line bytes, after onCommit saw them', async () => {
      const { store, commits } = await openStore(await sut.newLocation());
      const committed = await store.append([note(1), scan(2), hb(3)]);
      expect(committed.map((c) => [c.envelope.seq, c.journal])).toEqual([
        [1, 'events'],
        [2, 'scans'],
        [3, 'heartbeats'],
      ]);
      for (const c of committed) expect(c.line.toString()).toBe(canonicalJson(c.envelope));
      expect(commits.flat()).toEqual(committed);
      expect(store.lastSeq).toBe(3);
    });

    it('concurrent appends get gapless seqs in commit order; the drafts of one append stay together', async () => {
      const { store, commits } = await openStore(await sut.newLocation());
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.append([note(i * 3), note(i * 3 + 1), note(i * 3 + 2)])));
      for (const r of results) expect(r.map((c) => c.envelope.seq)).toEqual([r[0]!.envelope.seq, r[0]!.envelope.seq + 1, r[0]!.envelope.seq + 2]);
      expect(commits.flat().map((c) => c.envelope.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
      expect(store.lastSeq).toBe(60);
    });

    it('refuses to append before replay, and to replay twice', async () => {
      const store = sut.create(await sut.newLocation(), { now: () => new Date(), onCommit: () => {} });
      sut.onCleanup(() => store.close());
      await expect(store.append([note(1)])).rejects.toThrow(/append before replay/);
      await store.replay(() => {});
      await expect(store.replay(() => {})).rejects.toThrow(/once/);
    });

    it('a restart replays what was appended, in seq order, with the same line bytes', async () => {
      const location = await sut.newLocation();
      const first = await openStore(location);
      const committed = [...(await first.store.append([note(1), hb(2)])), ...(await first.store.append([scan(3), note(4)]))];
      await first.store.close();
      const second = await openStore(location);
      expect(second.replayed).toEqual(committed);
      expect(second.report.lastSeq).toBe(4);
      expect((await second.store.append([note(5)]))[0]!.envelope.seq).toBe(5);
    });

    it('tail reads after a seq (or from a time) in seq order across journals, and stops when asked', async () => {
      const { store } = await openStore(await sut.newLocation());
      for (let i = 1; i <= 12; i++) await store.append([[hb, note, scan][i % 3]!(i)]);
      expect(await tailSeqs(store, { afterSeq: 0 })).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      expect(await tailSeqs(store, { afterSeq: 7 })).toEqual([8, 9, 10, 11, 12]);
      expect(await tailSeqs(store, { afterSeq: 0 }, { journals: ['heartbeats'] })).toEqual([3, 6, 9, 12]);
      expect(await tailSeqs(store, { afterSeq: 4 }, { journals: ['heartbeats', 'scans'] })).toEqual([5, 6, 8, 9, 11, 12]);
      expect(await tailSeqs(store, { tsMs: T0 + 10_000 })).toEqual([10, 11, 12]); // seq n was stamped T0 + n s
      expect(await tailSeqs(store, { afterSeq: 2 }, { stopAfter: 3 })).toEqual([3, 4, 5]);
      expect(await tailSeqs(store, { afterSeq: 12 })).toEqual([]);
    });

    it('readNewestFirst reads one journal from its end; readLines gives the stored bytes in order', async () => {
      const { store } = await openStore(await sut.newLocation());
      const committed: Committed[] = [];
      for (let i = 1; i <= 6; i++) committed.push(...(await store.append([i % 2 ? hb(i) : note(i)])));
      const newest = (journal: JournalName, max: number) => {
        const out: number[] = [];
        return store
          .readNewestFirst(journal, (e) => {
            out.push(e.envelope.seq);
            return out.length < max;
          })
          .then(() => out);
      };
      expect(await newest('heartbeats', 10)).toEqual([5, 3, 1]);
      expect(await newest('events', 2)).toEqual([6, 4]);
      const lines: string[] = [];
      await store.readLines('heartbeats', (l) => lines.push(l.toString()));
      expect(lines).toEqual(committed.filter((c) => c.journal === 'heartbeats').map((c) => c.line.toString()));
    });

    it('an envelope with no canonical form is refused without taking a seq', async () => {
      const { store } = await openStore(await sut.newLocation());
      await expect(store.append([{ kind: 'note', author: 'op', body: { s: '\ud800' } }])).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
      expect((await store.append([note(1)]))[0]!.envelope.seq).toBe(1);
    });

    it('claims: a store that enforces them refuses a taken claim or stored id (with the seq that took it) and survives a restart; one that does not (JSONL, one writer) accepts them and leaves the rules to the center', async () => {
      const location = await sut.newLocation();
      const { store, commits } = await openStore(location);
      const claims = [{ key: claimKey('join-token-use', 't1', 1) }];
      const [won] = await store.append([note(1)], { claims });
      if (!store.enforcesClaims) {
        expect((await store.append([note(2)], { claims }))[0]!.envelope.seq).toBe(2);
        expect(store.claim).toBeUndefined();
        return;
      }
      await expect(store.append([note(2)], { claims })).rejects.toMatchObject({ code: 'ID_CONFLICT', kind: 'claim', seq: won!.envelope.seq });
      const [s1] = await store.append([scan(3)]);
      await expect(store.append([note(4), scan(3)])).rejects.toMatchObject({ kind: 'id', key: 'scan-3', seq: s1!.envelope.seq });
      // Refused appends take no seq and reach no consumer; in one batch, the first of two equal claims wins.
      const both = await Promise.allSettled([store.append([note(5)], { claims: [{ key: 'k' }] }), store.append([note(6)], { claims: [{ key: 'k' }] })]);
      expect(both.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
      expect(commits.flat().map((c) => c.envelope.seq)).toEqual([1, 2, 3]);
      await store.claim!([{ key: 'nonce-1', expiresAtMs: Date.now() + 60_000 }]);
      await expect(store.claim!([{ key: 'nonce-1' }])).rejects.toMatchObject({ kind: 'claim' });
      await store.close();
      const again = await openStore(location);
      await expect(again.store.append([note(7)], { claims })).rejects.toMatchObject({ kind: 'claim' });
      await expect(again.store.claim!([{ key: 'nonce-1' }])).rejects.toMatchObject({ kind: 'claim' });
    });
  });
}
