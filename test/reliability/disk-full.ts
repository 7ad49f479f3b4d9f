/**
 * Disk trouble: the log dir is a 2 MiB tmpfs that fills up. The center must answer 503 JSON errors while the disk
 * is full, lose nothing it acknowledged, and accept writes again once space returns (a filler file deleted).
 * Needs root (mount); `diskFullAvailable()` says whether this machine allows it.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, unlinkSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { adminCall, checkJournalsValid, enrollNode, sendHeartbeat, startReliabilityCenter } from './harness.js';

export function tryMountTmpfs(dir: string, size = '2m'): boolean {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0750`, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function unmount(dir: string): void {
  try {
    execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
  } catch {
    // already gone
  }
}

export interface DiskFullResult {
  ackedBefore: number;
  fullStatuses: Record<string, number>;
  fullErrorCodes: string[];
  nonJsonErrors: number;
  ackedWhileFull: number;
  ackedAfter: number;
  lost: number;
  aliveWhileFull: boolean;
  journalProblems: string[];
  restartedHeartbeats: number;
  journalHeartbeats: number;
}

/** Fills the disk, keeps posting heartbeats and notes, frees space, posts again, restarts and checks. */
export async function diskFullScenario(dir: string): Promise<DiskFullResult> {
  const logDir = join(dir, 'logs');
  const cc = await startReliabilityCenter(dir);
  const acked: string[] = [];
  try {
    const node = await enrollNode(cc, 'disk-node');
    let i = 0;
    const post = async () => {
      const id = `disk-hb-${i++}`;
      const r = await sendHeartbeat(cc.url, node, { id });
      if (r.status === 200) acked.push(id);
      return r;
    };
    for (let k = 0; k < 20; k++) if ((await post()).status !== 200) throw new Error('heartbeats failed before the disk filled');
    const ackedBefore = acked.length;
    // Fill the filesystem to the last block.
    const filler = join(logDir, 'filler.bin');
    const st = statfsSync(logDir);
    writeFileSync(filler, Buffer.alloc(Math.max(0, Number(st.bavail) * Number(st.bsize))));
    try {
      writeFileSync(join(logDir, 'filler2.bin'), Buffer.alloc(64 * 1024));
    } catch {
      // ENOSPC: full
    }
    const fullStatuses: Record<string, number> = {};
    const codes = new Set<string>();
    let nonJson = 0;
    const ackedBeforeFull = acked.length;
    for (let k = 0; k < 40; k++) {
      const r = await post();
      fullStatuses[r.status] = (fullStatuses[r.status] ?? 0) + 1;
      if (r.status !== 200) {
        if (typeof r.json?.error?.code === 'string') codes.add(r.json.error.code);
        else nonJson++;
      }
      const note = await adminCall(cc.url, cc.token, 'POST', '/api/events', { kind: 'note', body: { text: `while full ${k}` } });
      fullStatuses[`note ${note.status}`] = (fullStatuses[`note ${note.status}`] ?? 0) + 1;
      if (note.status >= 500 && typeof note.json?.error?.code !== 'string') nonJson++;
    }
    const ackedWhileFull = acked.length - ackedBeforeFull;
    const health = await adminCall(cc.url, cc.token, 'GET', '/healthz');
    const aliveWhileFull = cc.child.exitCode === null && health.status === 200;
    // Space returns.
    rmSync(filler, { force: true });
    rmSync(join(logDir, 'filler2.bin'), { force: true });
    const beforeRecovery = acked.length;
    for (let k = 0; k < 20; k++) await post();
    const ackedAfter = acked.length - beforeRecovery;
    await cc.stop();
    const cc2 = await startReliabilityCenter(dir);
    try {
      const lines = readdirSync(logDir)
        .filter((f) => f.startsWith('heartbeats') && f.endsWith('.jsonl'))
        .flatMap((f) => readFileSync(join(logDir, f), 'utf8').split('\n').filter(Boolean));
      const ids = new Set(lines.map((l) => JSON.parse(l).id));
      const detail = await adminCall(cc2.url, cc2.token, 'GET', '/api/nodes/disk-node');
      return {
        ackedBefore,
        fullStatuses,
        fullErrorCodes: [...codes],
        nonJsonErrors: nonJson,
        ackedWhileFull,
        ackedAfter,
        lost: acked.filter((id) => !ids.has(id)).length,
        aliveWhileFull,
        journalProblems: checkJournalsValid(logDir),
        restartedHeartbeats: detail.json.heartbeat_count,
        journalHeartbeats: lines.length,
      };
    } finally {
      await cc2.stop();
    }
  } finally {
    await cc.stop();
    try {
      unlinkSync(join(logDir, 'filler.bin'));
    } catch {
      // removed above
    }
  }
}
