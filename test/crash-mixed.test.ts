// Bounded version of test/reliability/crash.test.ts for the default suite: 2 rounds of mixed load.
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';
import { mixedCrashRound } from './reliability/mixed-crash-round.js';

describe('crash safety under heartbeat + event + scan load (2 kill -9 rounds)', () => {
  it('loses nothing acknowledged and the scans ledger still verifies', async () => {
    const t = tempDir();
    try {
      for (let round = 0; round < 2; round++) {
        const r = await mixedCrashRound(t.dir, round);
        expect(r.lost).toBe(0);
        expect(r.duplicated).toBe(0);
        expect(r.journalProblems).toEqual([]);
        expect(r.ledger.problems).toEqual([]);
      }
    } finally {
      t.cleanup();
    }
  }, 90_000);
});
