import { afterEach, describe, expect, it } from 'vitest';
import { createCommitFanout, perEntry, type Projection, type Reactor } from './commit-fanout.js';
import { openJournal, type Committed, type Journal } from './journal.js';
import { replayJournals } from './replay.js';
import { journalForKind } from '../../protocol/envelope.js';
import { tempDir } from '../../test/helpers.js';
import type { EnvelopeDraft } from '../../protocol/envelope.js';
/** One draft through the batch API, as the single appends of these tests. */
const appendOne = (j: Pick<Journal, 'append'>, d: EnvelopeDraft) => j.append([d]).then(([c]) => c!.envelope);


const dirs: Array<() => void> = [];
const journals: Journal[] = [];
afterEach(async () => {
  for (const j of journals.splice(0)) await j.close();
  for (const c of dirs.splice(0)) c();
});

function recordingLog() {
  const errors: string[] = [];
  return { errors, log: { error: (m: string) => errors.push(m) } };
}

const seqs = (entries: readonly Committed[]) => entries.map((e) => e.envelope.seq);

/** Writes `n` notes into a fresh log dir and returns it, closed. */
async function logWith(n: number): Promise<string> {
  const t = tempDir();
  dirs.push(t.cleanup);
  const j = await openJournal({ dir: t.dir, fsync: 'off' });
  for (let i = 0; i < n; i++) await appendOne(j, { kind: 'note', author: 'token:bot', body: { text: `old ${i}` } });
  await j.close();
  return t.dir;
}

/** Replays `dir` through the fan-out, then opens the journal on it with the fan-out as its commit hook. */
async function restart(dir: string, fanout: ReturnType<typeof createCommitFanout>): Promise<Journal> {
  const report = await replayJournals({ dir, visit: ({ envelope, line }) => fanout.replay({ envelope, journal: journalForKind(envelope.kind), line: line.bytes }) });
  fanout.endReplay();
  const journal = await openJournal({ dir, fsync: 'off', lastSeq: report.lastSeq, onCommit: fanout.commit });
  journals.push(journal);
  return journal;
}

describe('commit fan-out', () => {
  it('rebuilds projections from replay and feeds them live commits; a reactor sees live commits only', async () => {
    const dir = await logWith(3);
    const { log, errors } = recordingLog();
    const fanout = createCommitFanout({ log });
    const projected: number[] = [];
    fanout.addProjection('seen', perEntry(({ envelope }) => projected.push(envelope.seq)));
    const reacted: number[] = [];
    // Even an object that happens to have a replay method gets only onCommit when registered as a reactor.
    const reactor = { onCommit: (b: readonly Committed[]) => reacted.push(...seqs(b)), replay: () => reacted.push(-1) };
    fanout.addReactor('live-only', reactor);
    const journal = await restart(dir, fanout);
    expect(projected).toEqual([1, 2, 3]);
    expect(reacted).toEqual([]);
    fanout.seal();
    const env = await appendOne(journal, { kind: 'note', author: 'token:bot', body: { text: 'new' } });
    expect(env.seq).toBe(4);
    expect(projected).toEqual([1, 2, 3, 4]);
    expect(reacted).toEqual([4]);
    expect(errors).toEqual([]);
  });

  it('a throwing reactor blocks neither the projections, nor the other reactors, nor the acknowledgement', async () => {
    const dir = await logWith(0);
    const { log, errors } = recordingLog();
    const fanout = createCommitFanout({ log });
    const order: string[] = [];
    fanout.addReactor('boom', { onCommit: () => { order.push('boom'); throw new Error('reactor bug'); } });
    fanout.addProjection('state', perEntry(({ envelope }) => order.push(`state:${envelope.seq}`)));
    fanout.addReactor('after', { onCommit: (b) => order.push(`after:${seqs(b).join(',')}`) });
    fanout.addProjection('ring', perEntry(({ envelope }) => order.push(`ring:${envelope.seq}`)));
    const journal = await restart(dir, fanout);
    fanout.seal();
    // The append resolves (acknowledged) although a reactor threw inside the journal's commit hook.
    const env = await appendOne(journal, { kind: 'note', author: 'token:bot', body: { text: 'x' } });
    expect(env.seq).toBe(1);
    // Projections in registration order, then reactors in registration order, whatever the interleaving of adds.
    expect(order).toEqual(['state:1', 'ring:1', 'boom', 'after:1']);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/reactor boom failed on seq 1\.\.1: reactor bug/);
    // The next batch goes through the same way.
    await appendOne(journal, { kind: 'note', author: 'token:bot', body: { text: 'y' } });
    expect(order.slice(4)).toEqual(['state:2', 'ring:2', 'boom', 'after:2']);
  });

  it('a throwing projection is logged; the other projections and the reactors still get the batch', async () => {
    const dir = await logWith(0);
    const { log, errors } = recordingLog();
    const fanout = createCommitFanout({ log });
    const got: string[] = [];
    fanout.addProjection('broken', { replay: () => {}, commit: () => { throw new Error('projection bug'); } });
    fanout.addProjection('fine', perEntry(({ envelope }) => got.push(`fine:${envelope.seq}`)));
    fanout.addReactor('r', { onCommit: (b) => got.push(`r:${seqs(b).join(',')}`) });
    const journal = await restart(dir, fanout);
    fanout.seal();
    await appendOne(journal, { kind: 'note', author: 'token:bot', body: { text: 'x' } });
    expect(got).toEqual(['fine:1', 'r:1']);
    expect(errors).toEqual([expect.stringMatching(/projection broken failed.*projection bug/)]);
  });

  it('a failing projection during replay stops start-up instead of leaving wrong state', async () => {
    const dir = await logWith(2);
    const fanout = createCommitFanout({ log: recordingLog().log });
    fanout.addProjection('bad', { replay: ({ envelope }) => { if (envelope.seq === 2) throw new Error('cannot apply'); }, commit: () => {} });
    await expect(restart(dir, fanout)).rejects.toThrow(/cannot apply/);
  });

  it('runs replayed() once, after the last replayed entry', async () => {
    const dir = await logWith(2);
    const fanout = createCommitFanout({ log: recordingLog().log });
    const calls: string[] = [];
    const p: Projection = { replay: ({ envelope }) => calls.push(`replay:${envelope.seq}`), replayed: () => calls.push('replayed'), commit: () => calls.push('commit') };
    fanout.addProjection('p', p);
    const journal = await restart(dir, fanout);
    fanout.seal(); // already ended: replayed() does not run twice
    await appendOne(journal, { kind: 'note', author: 'token:bot', body: { text: 'x' } });
    expect(calls).toEqual(['replay:1', 'replay:2', 'replayed', 'commit']);
  });

  it('is fixed once sealed: adding a consumer throws, and so do replays after replay and commits before sealing', () => {
    const fanout = createCommitFanout({ log: recordingLog().log });
    const reactor: Reactor = { onCommit: () => {} };
    fanout.addProjection('p', perEntry(() => {}));
    expect(() => fanout.addProjection('p', perEntry(() => {}))).toThrow(/added twice/);
    expect(() => fanout.commit([])).toThrow(/before seal/);
    fanout.endReplay();
    expect(() => fanout.addProjection('late', perEntry(() => {}))).toThrow(/after replay/);
    const entry = { envelope: { v: 1, id: 'x', seq: 1, ts: new Date(0).toISOString(), kind: 'note', author: 'a', body: {} }, journal: 'events', line: Buffer.from('{}') } as Committed;
    expect(() => fanout.replay(entry)).toThrow(/replay after replay ended/);
    fanout.addReactor('r', reactor);
    fanout.seal();
    expect(() => fanout.addReactor('r2', reactor)).toThrow(/sealed/);
    expect(() => fanout.addProjection('p2', perEntry(() => {}))).toThrow(/sealed/);
    expect(() => fanout.commit([entry])).not.toThrow();
  });
});
