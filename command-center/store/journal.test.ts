import { appendFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openJournal, type Journal } from './journal.js';
import { replayJournals } from './replay.js';
import type { Envelope } from '../../protocol/envelope.js';
import { canonicalJson } from '../../protocol/canonical-json.js';
import { tempDir } from '../../test/helpers.js';
import type { EnvelopeDraft } from '../../protocol/envelope.js';
/** One draft through the batch API, as the single appends of these tests. */
const appendOne = (j: Pick<Journal, 'append'>, d: EnvelopeDraft) => j.append([d]).then(([c]) => c!.envelope);


const dirs: Array<() => void> = [];
const newDir = () => {
  const t = tempDir();
  dirs.push(t.cleanup);
  return t.dir;
};
afterEach(() => dirs.splice(0).forEach((c) => c()));

const draft = (kind: string, i: number) => ({ kind, node_id: 'n1', author: 'node:n1', body: { i } });

async function replayAll(dir: string, repair = false) {
  const seen: Envelope[] = [];
  const report = await replayJournals({ dir, repair, visit: (e) => void seen.push(e.envelope) });
  return { seen, report };
}

describe('journal', () => {
  it('writes canonical lines to the file of each kind and replays them in seq order', async () => {
    const dir = newDir();
    const j = await openJournal({ dir });
    const kinds = ['heartbeat', 'scan', 'command', 'receipt', 'note', 'heartbeat', 'incident'];
    const envs = await Promise.all(kinds.map((k, i) => appendOne(j, draft(k, i))));
    await j.close();
    expect(envs.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    const hb = readFileSync(join(dir, 'heartbeats.jsonl'), 'utf8').trimEnd().split('\n');
    expect(hb).toHaveLength(2);
    expect(hb[0]).toBe(canonicalJson(envs[0]));
    expect(readFileSync(join(dir, 'commands.jsonl'), 'utf8').trimEnd().split('\n')).toHaveLength(2);
    expect(readFileSync(join(dir, 'events.jsonl'), 'utf8').trimEnd().split('\n')).toHaveLength(2);
    const { seen, report } = await replayAll(dir);
    expect(seen.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(seen).toEqual(envs);
    expect(report.lastSeq).toBe(7);
  });

  it('continues seq after a restart', async () => {
    const dir = newDir();
    let j = await openJournal({ dir });
    await appendOne(j, draft('note', 1));
    await j.close();
    const { report } = await replayAll(dir);
    j = await openJournal({ dir, lastSeq: report.lastSeq });
    expect((await appendOne(j, draft('note', 2))).seq).toBe(2);
    await j.close();
  });

  it('group commit: concurrent appends share writes, and none is acknowledged before its bytes are written', async () => {
    const dir = newDir();
    let writes = 0;
    let syncedBytes = 0;
    const acked: number[] = [];
    const j = await openJournal({
      dir,
      fileOps: {
        write: async (fh, data) => {
          writes++;
          await new Promise((r) => setTimeout(r, 5));
          await fh.write(data);
        },
      },
      onCommit: (batch) => {
        // Called once the batch is durable, before any of these appends resolves.
        syncedBytes = readFileSync(join(dir, 'events.jsonl')).length;
        for (const c of batch) expect(acked).not.toContain(c.envelope.seq);
      },
    });
    const all = Array.from({ length: 200 }, (_, i) =>
      appendOne(j, draft('note', i)).then((e) => {
        acked.push(e.seq);
        const onDisk = readFileSync(join(dir, 'events.jsonl'), 'utf8');
        expect(onDisk).toContain(`"seq":${e.seq},`);
        return e;
      }),
    );
    await Promise.all(all);
    await j.close();
    expect(acked).toHaveLength(200);
    expect(writes).toBeLessThan(20); // 200 appends, a handful of group commits
    expect(syncedBytes).toBe(readFileSync(join(dir, 'events.jsonl')).length);
  });

  it("fsync 'always' writes each append on its own", async () => {
    const dir = newDir();
    let writes = 0;
    const j = await openJournal({ dir, fsync: 'always', fileOps: { write: async (fh, d) => void (writes++, await fh.write(d)) } });
    await Promise.all(Array.from({ length: 10 }, (_, i) => appendOne(j, draft('note', i))));
    await j.close();
    expect(writes).toBe(10);
  });

  it('a failed write rejects with JOURNAL_UNAVAILABLE (503), rolls the file back, and later appends succeed', async () => {
    const dir = newDir();
    let fail = false;
    const j = await openJournal({
      dir,
      fileOps: {
        write: async (fh, data) => {
          if (fail) {
            await fh.write(data.subarray(0, 7)); // a partial write, then the disk gives up
            throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
          }
          await fh.write(data);
        },
      },
    });
    await appendOne(j, draft('note', 1));
    fail = true;
    await expect(appendOne(j, draft('note', 2))).rejects.toMatchObject({ code: 'JOURNAL_UNAVAILABLE', status: 503 });
    fail = false;
    await appendOne(j, draft('note', 3));
    await j.close();
    const lines = readFileSync(join(dir, 'events.jsonl'), 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l).body.i)).toEqual([1, 3]);
    const { seen } = await replayAll(dir);
    expect(seen.map((e) => e.body.i)).toEqual([1, 3]);
  });

  it('refuses appends after close', async () => {
    const j = await openJournal({ dir: newDir() });
    await j.close();
    await expect(appendOne(j, draft('note', 1))).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
  });
});

describe('replay recovery', () => {
  it('moves a torn last line aside, truncates to the last complete line, and reports it', async () => {
    const dir = newDir();
    const j = await openJournal({ dir });
    await appendOne(j, draft('heartbeat', 1));
    await appendOne(j, draft('heartbeat', 2));
    await j.close();
    const file = join(dir, 'heartbeats.jsonl');
    const good = readFileSync(file, 'utf8');
    appendFileSync(file, '{"author":"node:n1","body":{"i":3},"id":"x","kin'); // crash mid-write
    const { seen, report } = await replayAll(dir);
    expect(seen.map((e) => e.body.i)).toEqual([1, 2]);
    expect(report.tornTails).toHaveLength(1);
    expect(readFileSync(file, 'utf8')).toBe(good);
    const aside = readdirSync(dir).filter((f) => f.startsWith('heartbeats.jsonl.torn-'));
    expect(aside).toHaveLength(1);
    expect(readFileSync(join(dir, aside[0]!), 'utf8')).toContain('"kin');
    // appending after recovery yields a valid journal
    const j2 = await openJournal({ dir, lastSeq: report.lastSeq });
    await appendOne(j2, draft('heartbeat', 3));
    await j2.close();
    expect((await replayAll(dir)).seen.map((e) => e.body.i)).toEqual([1, 2, 3]);
  });

  it('stops on a corrupt line in the middle, naming file and line; --repair quarantines it', async () => {
    const dir = newDir();
    const j = await openJournal({ dir });
    for (let i = 1; i <= 3; i++) await appendOne(j, draft('note', i));
    await j.close();
    const file = join(dir, 'events.jsonl');
    const lines = readFileSync(file, 'utf8').split('\n');
    lines[1] = '{"hand-edited": tru';
    writeFileSync(file, lines.join('\n'));
    await expect(replayAll(dir)).rejects.toMatchObject({ code: 'JOURNAL_CORRUPT', message: expect.stringContaining(`${file}:2:`) });
    const { seen, report } = await replayAll(dir, true);
    expect(seen.map((e) => e.body.i)).toEqual([1, 3]);
    expect(report.quarantined).toEqual([expect.objectContaining({ file, line: 2 })]);
    expect(readFileSync(report.quarantined[0]!.movedTo, 'utf8')).toBe('{"hand-edited": tru\n');
    expect((await replayAll(dir)).seen).toHaveLength(2); // clean afterwards
  });

  it('rejects a seq that goes backwards within a file', async () => {
    const dir = newDir();
    const j = await openJournal({ dir });
    for (let i = 1; i <= 2; i++) await appendOne(j, draft('note', i));
    await j.close();
    const file = join(dir, 'events.jsonl');
    const [a, b] = readFileSync(file, 'utf8').trimEnd().split('\n');
    writeFileSync(file, `${b}\n${a}\n`);
    await expect(replayAll(dir)).rejects.toMatchObject({ code: 'JOURNAL_CORRUPT', message: expect.stringContaining('does not increase') });
  });
});

describe('journal batches across files', () => {
  it('rolls every file of a batch back when one file fails, so nothing unacknowledged stays on disk', async () => {
    const t = tempDir();
    dirs.push(t.cleanup);
    let failEvents = false;
    const committed: number[] = [];
    const j = await openJournal({
      dir: t.dir,
      onCommit: (b) => committed.push(...b.map((c) => c.envelope.seq)),
      fileOps: {
        write: async (fh, data) => {
          await fh.write(data);
          // Fail the events file only, after the scan file of the same batch was written.
          if (failEvents && data.toString().includes('"kind":"note"')) throw Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' });
        },
      },
    });
    await appendOne(j, draft('scan', 0));
    failEvents = true;
    const results = await Promise.allSettled([appendOne(j, draft('scan', 1)), appendOne(j, draft('note', 2))]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    failEvents = false;
    await appendOne(j, draft('scan', 3));
    await j.close();
    const scans = readFileSync(join(t.dir, 'sovereign-scans.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l).body.i);
    expect(scans).toEqual([0, 3]);
    expect(readFileSync(join(t.dir, 'events.jsonl'), 'utf8')).toBe('');
    expect(committed).toEqual([1, 4]);
  });
});
