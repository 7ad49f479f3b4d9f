/**
 * Rollback durability (a failed batch's truncate is synced before anything else is acknowledged) and file modes
 * (journals, segments, ledger files 0640; the log dir tightened to 0750; --repair keeps a file's mode).
 */
import { chmodSync, constants, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FileHandle } from 'node:fs/promises';
import type { EnvelopeDraft } from '../../protocol/envelope.js';
import type { Logger } from '../../lib/logger.js';
import { keyPairFromSeed } from '../../protocol/keys.js';
import { cleanupAfterEach, quietLogger, tempDir } from '../../test/helpers.js';
import { openJournal, realFileOps, type Journal, type JournalFileOps } from './journal.js';
import { replayJournals } from './replay.js';
import { createJsonlReader, createJsonlStore, prepareLogDir } from './jsonl-store.js';

import { createNamedLedger } from '../ledger/ledger.js';

const onCleanup = cleanupAfterEach();
const newDir = () => {
  const t = tempDir();
  onCleanup(t.cleanup);
  return t.dir;
};
const note = (i: number): EnvelopeDraft => ({ kind: 'note', author: 'op', body: { i } });
const appendOne = (j: Pick<Journal, 'append'>, d: EnvelopeDraft) => j.append([d]).then(([c]) => c!.envelope);
const mode = (path: string) => statSync(path).mode & 0o777;
const ENOSPC = () => Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });

/** File ops that record each call and fail where told. */
function faultyOps() {
  const calls: string[] = [];
  const fail = { write: false, datasync: false };
  const ops: JournalFileOps = {
    async write(fh: FileHandle, data: Buffer) {
      calls.push('write');
      if (fail.write) {
        await fh.write(data.subarray(0, 5)); // part of the line reaches the file, then the disk gives up
        throw ENOSPC();
      }
      await realFileOps.write(fh, data);
    },
    async datasync(fh) {
      calls.push('datasync');
      if (fail.datasync) throw ENOSPC();
      await fh.datasync();
    },
    async truncate(fh, size) {
      calls.push(`truncate ${size}`);
      await fh.truncate(size);
    },
  };
  return { ops, calls, fail };
}

describe('journal rollback durability', () => {
  it('syncs the rollback truncate of a failed batch', async () => {
    const dir = newDir();
    const f = faultyOps();
    const j = await openJournal({ dir, fileOps: f.ops });
    await appendOne(j, note(1));
    const size = statSync(join(dir, 'events.jsonl')).size;
    f.calls.length = 0;
    f.fail.write = true;
    await expect(appendOne(j, note(2))).rejects.toMatchObject({ code: 'JOURNAL_UNAVAILABLE', status: 503 });
    // The failed write, then the truncate back to the acknowledged length, then a sync of that truncate.
    expect(f.calls).toEqual(['write', `truncate ${size}`, 'datasync']);
    await j.close();
  });

  it('keeps refusing appends while the rollback cannot be synced, and recovers once it can', async () => {
    const dir = newDir();
    const f = faultyOps();
    const j = await openJournal({ dir, fileOps: f.ops });
    await appendOne(j, note(1));
    f.fail.write = true;
    f.fail.datasync = true;
    await expect(appendOne(j, note(2))).rejects.toMatchObject({ code: 'JOURNAL_UNAVAILABLE' });
    f.fail.write = false;
    // The write would succeed now, but the truncate of the failed batch is not durable: nothing is acknowledged,
    // and the other journals are refused too (the failed line could come back after a crash).
    await expect(appendOne(j, note(3))).rejects.toMatchObject({ code: 'JOURNAL_UNAVAILABLE' });
    await expect(appendOne(j, { kind: 'heartbeat', node_id: 'n1', author: 'node:n1', body: {} })).rejects.toMatchObject({ code: 'JOURNAL_UNAVAILABLE' });
    f.calls.length = 0;
    f.fail.datasync = false;
    await appendOne(j, note(4));
    expect(f.calls.slice(0, 2)).toEqual([expect.stringMatching(/^truncate /), 'datasync']); // the rollback first
    await j.close();
    const lines = readFileSync(join(dir, 'events.jsonl'), 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l).body.i)).toEqual([1, 4]);
  });
});

/** The open flags (from /proc/self/fdinfo) of every descriptor this process holds on `path`. */
function openFlags(path: string): number[] {
  const flags: number[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) !== path) continue;
      flags.push(parseInt(/^flags:\s+(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8));
    } catch {
      // a descriptor closed meanwhile
    }
  }
  return flags;
}

describe('durable writes', () => {
  it('opens the journals O_DSYNC, so a batch is durable in one write with no separate fdatasync; not with fsync off', async () => {
    for (const fsync of ['batch', 'always', 'off'] as const) {
      const dir = newDir();
      const f = faultyOps();
      const j = await openJournal({ dir, fsync, fileOps: f.ops, rotateHeartbeats: { maxBytes: 1, onRotate: () => {} } });
      await appendOne(j, note(1));
      await appendOne(j, { kind: 'heartbeat', node_id: 'n1', author: 'node:n1', body: {} });
      await j.flush(); // the rotation after it opened a fresh active file
      expect([fsync, f.calls]).toEqual([fsync, ['write', 'write']]);
      for (const file of ['events.jsonl', 'heartbeats.jsonl']) {
        const flags = openFlags(join(dir, file));
        expect(flags).toHaveLength(1);
        expect([fsync, file, (flags[0]! & constants.O_DSYNC) !== 0]).toEqual([fsync, file, fsync !== 'off']);
        expect(flags[0]! & constants.O_APPEND).toBe(constants.O_APPEND);
      }
      await j.close();
    }
  });
});

describe('heartbeat rotation', () => {
  it('waits for a heartbeat written by this process: a file already over the size is not named after seq 0 on the first other append', async () => {
    const dir = newDir();
    writeFileSync(join(dir, 'heartbeats.jsonl'), '{"author":"node:n1","body":{},"id":"h1","kind":"heartbeat","node_id":"n1","seq":1,"ts":"2025-01-01T00:00:00.000Z","v":1}\n');
    const rotated: number[] = [];
    const j = await openJournal({ dir, lastSeq: 1, rotateHeartbeats: { maxBytes: 1, onRotate: (s) => rotated.push(s.lastSeq) } });
    await appendOne(j, note(2));
    expect(rotated).toEqual([]);
    await appendOne(j, { kind: 'heartbeat', node_id: 'n1', author: 'node:n1', body: {} });
    await j.close();
    expect(rotated).toEqual([3]);
    expect(readFileSync(join(dir, 'heartbeats-000000000003.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).seq)).toEqual([1, 3]);
  });
});

describe('file modes', () => {
  it('creates journals and a rotated heartbeat segment 0640', async () => {
    const dir = newDir();
    const j = await openJournal({ dir, rotateHeartbeats: { maxBytes: 1, onRotate: () => {} } });
    await appendOne(j, { kind: 'heartbeat', node_id: 'n1', author: 'node:n1', body: {} });
    await appendOne(j, note(1));
    await j.close();
    for (const f of ['events.jsonl', 'heartbeats.jsonl', 'commands.jsonl', 'sovereign-scans.jsonl', 'heartbeats-000000000001.jsonl']) expect([f, mode(join(dir, f))]).toEqual([f, 0o640]);
  });

  it('writes ROOT.txt, PROOFCHAIN.json and the leaf cache 0640', async () => {
    const dir = newDir();
    writeFileSync(join(dir, 'sovereign-scans.jsonl'), '{"author":"node:n1","body":{},"id":"s1","kind":"scan","node_id":"n1","seq":1,"ts":"2025-01-01T00:00:00.000Z","v":1}\n');
    const ledger = createNamedLedger('scans', { dir, store: createJsonlReader({ dir }), key: keyPairFromSeed(new Uint8Array(32).fill(3)) });
    await ledger.load();
    await ledger.publishHead();
    await ledger.close();
    for (const f of ['ROOT.txt', 'PROOFCHAIN.json', 'sovereign-scans.leaves']) expect([f, mode(join(dir, f))]).toEqual([f, 0o640]);
  });

  it('tightens an existing 0755 log dir to 0750 at start', async () => {
    const dir = join(newDir(), 'logs');
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    const store = createJsonlStore({ dir, log: quietLogger, onCommit: () => {} });
    expect(mode(dir)).toBe(0o750);
    await store.close();
    const fresh = join(newDir(), 'new-logs');
    prepareLogDir(fresh, quietLogger);
    expect(mode(fresh)).toBe(0o750);
  });

  it('warns through the logger when a world-readable log dir cannot be tightened', () => {
    const dir = newDir();
    chmodSync(dir, 0o755);
    const warnings: string[] = [];
    const log: Logger = { ...quietLogger, warn: (m) => warnings.push(m) };
    const r = prepareLogDir(dir, log, () => {
      throw Object.assign(new Error('EPERM: operation not permitted'), { code: 'EPERM' });
    });
    expect(r.tightened).toBe(false);
    expect(warnings).toEqual([expect.stringContaining(`log dir ${dir} is mode 755`)]);
    expect(warnings[0]).toContain(`chmod 750 ${dir}`);
    // A dir that is already tight is left alone, silently.
    chmodSync(dir, 0o700);
    expect(prepareLogDir(dir, log, () => expect.fail('no chmod needed'))).toEqual({ mode: 0o700, tightened: false });
    expect(warnings).toHaveLength(1);
  });

  it('--repair keeps the mode of the file it rewrites', async () => {
    const dir = newDir();
    const j = await openJournal({ dir });
    for (let i = 1; i <= 3; i++) await appendOne(j, note(i));
    await j.close();
    const file = join(dir, 'events.jsonl');
    const lines = readFileSync(file, 'utf8').split('\n');
    lines[1] = '{"hand-edited": tru';
    writeFileSync(file, lines.join('\n'));
    chmodSync(file, 0o644); // an operator's choice, e.g. a log shipper in the group
    const report = await replayJournals({ dir, repair: true, visit: () => {} });
    expect(report.quarantined).toHaveLength(1);
    expect(mode(file)).toBe(0o644);
  });
});
