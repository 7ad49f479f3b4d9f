import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../protocol/canonical-json.js';
import type { JournalName } from '../../protocol/envelope.js';
import { cleanupAfterEach, quietLogger, tempDir } from '../../test/helpers.js';
import type { Committed } from './envelope-store.js';
import { createJsonlStore, type JsonlStoreOptions } from './jsonl-store.js';
import { summarize } from './heartbeat-segments.js';
import { createFleetState } from '../fleet/fleet-state.js';
import { hb, note, scan, storeContract, T0, tailSeqs } from '../../test/store-contract.js';

const onCleanup = cleanupAfterEach();

async function openStore(dir: string, extra: Partial<JsonlStoreOptions> = {}) {
  const commits: Committed[][] = [];
  let t = T0;
  const store = createJsonlStore({ dir, log: quietLogger, now: () => new Date((t += 1000)), onCommit: (b) => commits.push(b), ...extra });
  const replayed: Committed[] = [];
  const report = await store.replay((e) => replayed.push(e));
  onCleanup(() => store.close());
  return { store, commits, replayed, report };
}
const newDir = () => {
  const t = tempDir();
  onCleanup(t.cleanup);
  return join(t.dir, 'logs');
};

storeContract('JSONL store', {
  newLocation: async () => newDir(),
  create: (dir, deps) => createJsonlStore({ dir, log: quietLogger, ...deps }),
  onCleanup,
});

describe('JSONL store', () => {
  it('append resolves with the committed envelopes and their canonical line bytes, after onCommit saw them', async () => {
    const dir = newDir();
    const { store, commits } = await openStore(dir);
    const committed = await store.append([note(1), scan(2), hb(3)]);
    expect(committed.map((c) => [c.envelope.seq, c.journal])).toEqual([
      [1, 'events'],
      [2, 'scans'],
      [3, 'heartbeats'],
    ]);
    for (const c of committed) expect(c.line.toString()).toBe(canonicalJson(c.envelope));
    expect(commits.flat()).toEqual(committed);
    expect(store.lastSeq).toBe(3);
    expect(readFileSync(join(dir, 'sovereign-scans.jsonl'), 'utf8')).toBe(`${committed[1]!.line}\n`);
  });

  it("the drafts of one append share one batch, also with fsync 'always'", async () => {
    const dir = newDir();
    let writes = 0;
    const { store } = await openStore(dir, { fsync: 'always', fileOps: { write: async (fh, d) => void (writes++, await fh.write(d)) } });
    await Promise.all([store.append([note(1), note(2), note(3)]), store.append([note(4)])]);
    expect(writes).toBe(2);
  });

  it('tail reads after a seq (or from a time) in seq order across journals and heartbeat segments, and stops when asked', async () => {
    const dir = newDir();
    const state = createFleetState();
    // A tiny segment size: every heartbeat batch closes a segment, so heartbeats live in several files.
    const { store } = await openStore(dir, { heartbeatSegmentBytes: 1, summarizeHeartbeats: (s) => summarize(state, s) });
    for (let i = 1; i <= 12; i++) await store.append([[hb, note, scan][i % 3]!(i)]);
    await store.flush(); // rotation runs after an append is acknowledged
    expect(readdirSync(dir).filter((f) => /^heartbeats-\d{12}\.jsonl$/.test(f))).toHaveLength(4);
    expect(await tailSeqs(store, { afterSeq: 0 })).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(await tailSeqs(store, { afterSeq: 7 })).toEqual([8, 9, 10, 11, 12]);
    expect(await tailSeqs(store, { afterSeq: 0 }, { journals: ['heartbeats'] })).toEqual([3, 6, 9, 12]);
    expect(await tailSeqs(store, { afterSeq: 4 }, { journals: ['heartbeats', 'scans'] })).toEqual([5, 6, 8, 9, 11, 12]);
    expect(await tailSeqs(store, { tsMs: T0 + 10_000 })).toEqual([10, 11, 12]); // seq n was stamped T0 + n s
    expect(await tailSeqs(store, { afterSeq: 2 }, { stopAfter: 3 })).toEqual([3, 4, 5]);
    expect(await tailSeqs(store, { afterSeq: 12 })).toEqual([]);
  });

  it('readNewestFirst reads one journal from its end, segments included; readLines gives the stored bytes in order', async () => {
    const dir = newDir();
    const state = createFleetState();
    const { store } = await openStore(dir, { heartbeatSegmentBytes: 1, summarizeHeartbeats: (s) => summarize(state, s) });
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

  it('reads never see an entry before it is durable', async () => {
    const dir = newDir();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let reached!: () => void;
    const atSync = new Promise<void>((r) => (reached = r));
    let hold = false;
    const { store } = await openStore(dir, {
      fileOps: {
        write: async (fh, data) => {
          await fh.write(data);
          if (hold) {
            reached();
            await gate; // in the file, but its durable write has not returned: not acknowledged
          }
        },
      },
    });
    await store.append([note(1)]);
    hold = true;
    const pending = store.append([note(2)]);
    await atSync;
    expect(readFileSync(join(dir, 'events.jsonl'), 'utf8').trimEnd().split('\n')).toHaveLength(2); // the line is in the file
    expect(await tailSeqs(store, { afterSeq: 0 })).toEqual([1]);
    release();
    await pending;
    expect(await tailSeqs(store, { afterSeq: 0 })).toEqual([1, 2]);
  });
});
