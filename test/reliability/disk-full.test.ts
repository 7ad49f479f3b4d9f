import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diskFullScenario, tryMountTmpfs, unmount } from './disk-full.js';

describe('disk trouble: the log dir fills up (2 MiB tmpfs)', () => {
  it('answers 503 JSON errors while full, loses nothing acknowledged, recovers when space returns', async (ctx) => {
    const dir = mkdtempSync(join(tmpdir(), 'vm-diskfull-'));
    const logDir = join(dir, 'logs');
    if (!tryMountTmpfs(logDir)) {
      console.log('disk trouble: mount -t tmpfs is not permitted here (needs root); skipped');
      rmSync(dir, { recursive: true, force: true });
      ctx.skip();
      return;
    }
    try {
      const r = await diskFullScenario(dir);
      console.log(`disk trouble: ${JSON.stringify(r)}`);
      expect(r.aliveWhileFull).toBe(true);
      const failures = Object.entries(r.fullStatuses).filter(([s]) => !/^(note )?(200|201)$/.test(s));
      expect(failures.length).toBeGreaterThan(0); // the disk really was full
      for (const [s] of failures) expect(s.replace('note ', '')).toBe('503');
      expect(r.nonJsonErrors).toBe(0);
      expect(r.lost).toBe(0);
      expect(r.ackedAfter).toBe(20);
      expect(r.journalProblems).toEqual([]);
      expect(r.restartedHeartbeats).toBe(r.journalHeartbeats);
    } finally {
      unmount(logDir);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
