import { cpSync, existsSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { enrolledNode, heartbeatBody, quietLogger, startTestCenter, tempDir, cleanupAfterEach } from '../../test/helpers.js';
import { createJsonlStore } from './jsonl-store.js';
import { listSegments, segmentName } from '../../lib/journal/index.js';
import { pruneSegments, readSummary, segmentsToReplay } from './heartbeat-segments.js';

const onCleanup = cleanupAfterEach();

describe('heartbeat segments', () => {
  it('rotates heartbeats.jsonl, and a restart replays only recent segments yet reports the same counts', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c1 = await startTestCenter(t.dir, { heartbeatSegmentBytes: 8192 });
    const a = await enrolledNode(c1, 'a');
    const b = await enrolledNode(c1, 'b');
    for (let i = 0; i < 60; i++) {
      await a.send('POST', '/api/agent/heartbeat', heartbeatBody('a'));
      if (i % 2) await b.send('POST', '/api/agent/heartbeat', heartbeatBody('b'));
    }
    const before = (await c1.api('GET', '/api/nodes')).json;
    await c1.close();
    const logs = join(t.dir, 'logs');
    const segments = listSegments(logs);
    expect(segments.length).toBeGreaterThan(3);
    expect(readdirSync(logs)).toContain('heartbeats.summary.json');

    const c2 = await startTestCenter(t.dir, { heartbeatSegmentBytes: 8192 });
    onCleanup(() => c2.close());
    const after = (await c2.api('GET', '/api/nodes')).json;
    expect(after.map((n: any) => [n.node_id, n.heartbeat_count, n.first_seen, n.last_seen])).toEqual(before.map((n: any) => [n.node_id, n.heartbeat_count, n.first_seen, n.last_seen]));
    expect(after[0].heartbeat_count).toBe(60);
    expect(after[1].heartbeat_count).toBe(30);
    // It read the newest summarised segment and what follows, not the whole history.
    expect(c2.replay.envelopes).toBeLessThan(c1.services.state.lastSeq);
    expect((await c2.api('GET', '/api/nodes/a')).json.history.length).toBeGreaterThan(0);
  });

  it('a node silent since an old segment keeps its last heartbeat across a full replay (from the summary)', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c1 = await startTestCenter(t.dir, { heartbeatSegmentBytes: 8192, snapshotOff: true });
    const quiet = await enrolledNode(c1, 'quiet');
    const busy = await enrolledNode(c1, 'busy');
    for (let i = 0; i < 3; i++) await quiet.send('POST', '/api/agent/heartbeat', heartbeatBody('quiet'));
    for (let i = 0; i < 80; i++) await busy.send('POST', '/api/agent/heartbeat', heartbeatBody('busy'));
    const lastQuiet = c1.services.state.nodes.get('quiet')!.last_heartbeat_seq!;
    const before = (await c1.api('GET', '/api/nodes/quiet')).json;
    await c1.close();
    const summary = JSON.parse(readFileSync(join(t.dir, 'logs', 'heartbeats.summary.json'), 'utf8'));
    expect(summary.v).toBe(2);
    expect(summary.nodes.quiet.last.seq).toBe(lastQuiet);
    // The segment replay starts from is newer than quiet's last heartbeat: replay alone would not see it.
    const replayed = segmentsToReplay(listSegments(join(t.dir, 'logs')), summary);
    expect(replayed.length).toBeGreaterThan(0);
    expect(replayed[0]!.lastSeq).toBeGreaterThan(lastQuiet);

    const c2 = await startTestCenter(t.dir, { heartbeatSegmentBytes: 8192, snapshotOff: true });
    onCleanup(() => c2.close());
    expect(c2.snapshot.used).toBe(false);
    const after = (await c2.api('GET', '/api/nodes/quiet')).json;
    for (const k of ['last_seen', 'first_seen', 'heartbeat_count', 'hostname', 'agent_version', 'status', 'last_heartbeat']) expect(after[k], k).toEqual(before[k]);
    expect(after.history).toEqual(before.history.slice(-1));

    // A version 1 summary (no last heartbeats) still reads: the counts stay right, the last-seen time is unknown.
    delete summary.nodes.quiet.last;
    delete summary.nodes.busy.last;
    writeFileSync(join(t.dir, 'logs', 'heartbeats.summary.json'), JSON.stringify({ ...summary, v: 1 }));
    await c2.close();
    const c3 = await startTestCenter(t.dir, { heartbeatSegmentBytes: 8192, snapshotOff: true });
    onCleanup(() => c3.close());
    const old = (await c3.api('GET', '/api/nodes/quiet')).json;
    expect([old.heartbeat_count, old.first_seen, old.last_seen ?? null]).toEqual([3, before.first_seen, null]);
  });

  it('a rotation takes a state snapshot, so a restart after a crash still starts from one and counts the same', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c1 = await startTestCenter(t.dir, { heartbeatSegmentBytes: 8192, snapshotEntries: 0, snapshotSecs: 0 });
    onCleanup(() => c1.close());
    const a = await enrolledNode(c1, 'a');
    for (let i = 0; i < 40; i++) await a.send('POST', '/api/agent/heartbeat', heartbeatBody('a'));
    // The summary is written off the event loop after the rotation: wait for it (bounded).
    for (let i = 0; i < 100 && !existsSync(join(t.dir, 'logs', 'heartbeats.summary.json')); i++) await new Promise((r) => setTimeout(r, 20));
    const summary = JSON.parse(readFileSync(join(t.dir, 'logs', 'heartbeats.summary.json'), 'utf8')) as { through_seq: number };
    for (let i = 0; i < 100 && (c1.snapshotter!.last?.seq ?? 0) < summary.through_seq; i++) await new Promise((r) => setTimeout(r, 20));
    expect(c1.snapshotter!.last!.seq).toBeGreaterThanOrEqual(summary.through_seq);
    await c1.services.submit({ kind: 'note', author: 'admin', body: { text: 'after the snapshot' } });
    const before = (await c1.api('GET', '/api/nodes')).json;
    // What a crash leaves: the dirs as they are, without the snapshot a clean shutdown would write.
    const copy = tempDir();
    onCleanup(copy.cleanup);
    cpSync(t.dir, copy.dir, { recursive: true, filter: (src) => !src.endsWith('.sock') });
    const c2 = await startTestCenter(copy.dir, { heartbeatSegmentBytes: 8192 });
    onCleanup(() => c2.close());
    expect(c2.snapshot.used).toBe(true);
    expect(c2.replay.afterSeq).toBeGreaterThanOrEqual(summary.through_seq);
    const after = (await c2.api('GET', '/api/nodes')).json;
    expect(after.map((n: any) => [n.node_id, n.heartbeat_count, n.first_seen, n.last_seen])).toEqual(before.map((n: any) => [n.node_id, n.heartbeat_count, n.first_seen, n.last_seen]));
    expect(after[0].heartbeat_count).toBe(40);
    expect((await c2.api('GET', '/api/nodes/a')).json.history).toEqual((await c1.api('GET', '/api/nodes/a')).json.history);
  });

  it('chooses the newest summarised segment and everything after it', () => {
    const segs = [10, 20, 30, 40].map((n) => ({ path: segmentName(n), lastSeq: n }));
    expect(segmentsToReplay(segs, undefined)).toEqual(segs);
    const summary = { v: 1 as const, through_seq: 30, total: 0, nodes: {} };
    expect(segmentsToReplay(segs, summary).map((s) => s.lastSeq)).toEqual([30, 40]);
  });

  it('retention deletes old closed segments but always keeps the newest', () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const old = Date.now() / 1000 - 40 * 86_400;
    for (const n of [10, 20, 30]) {
      const p = join(t.dir, segmentName(n));
      writeFileSync(p, '');
      utimesSync(p, old, old);
    }
    writeFileSync(join(t.dir, 'sovereign-scans.jsonl'), '');
    const deleted = pruneSegments(t.dir, 30 * 86_400_000, Date.now());
    expect(deleted.map((p) => p.split('/').pop())).toEqual([segmentName(10), segmentName(20)]);
    expect(readdirSync(t.dir).sort()).toEqual([segmentName(30), 'sovereign-scans.jsonl']);
  });
});

describe('summary written off the event loop', () => {
  it('each rotation writes its summary before the snapshot hook and retention run; close waits for the last one', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const dir = join(t.dir, 'logs');
    const atRotated: Array<{ summaryThrough: number | undefined; newestSegment: number | undefined }> = [];
    const store = createJsonlStore({
      dir,
      log: quietLogger,
      onCommit: () => {},
      heartbeatSegmentBytes: 4096,
      heartbeatRetentionDays: 1,
      summarizeHeartbeats: (seq) => ({ v: 2, through_seq: seq, total: seq, nodes: {} }),
      onRotated: () => atRotated.push({ summaryThrough: readSummary(dir)?.through_seq, newestSegment: listSegments(dir).at(-1)?.lastSeq }),
    });
    await store.replay(() => {});
    let aged: string[] = [];
    for (let i = 0; i < 120; i++) {
      await store.append([{ kind: 'heartbeat', node_id: 'n1', author: 'node:n1', body: { node_id: 'n1', hostname: 'n1.example', pad: 'x'.repeat(200), i } }]);
      // A segment older than the retention age: deleted at a later rotation, once a summary covering it is on disk.
      if (i === 40) {
        aged = listSegments(dir).map((seg) => seg.path);
        for (const path of aged) utimesSync(path, new Date(0), new Date(0));
      }
    }
    await store.close();
    expect(atRotated.length).toBeGreaterThan(3);
    // The hook saw a summary on disk covering the newest segment (a later rotation's summary may supersede one still
    // waiting, so it can be newer; never older).
    for (const r of atRotated) expect(r.summaryThrough!).toBeGreaterThanOrEqual(r.newestSegment!);
    const segments = listSegments(dir);
    expect(readSummary(dir)!.through_seq).toBe(segments.at(-1)!.lastSeq);
    expect(aged.length).toBeGreaterThan(0);
    expect(aged.filter((p) => existsSync(p))).toEqual([]); // retention ran after later summaries were on disk
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});
