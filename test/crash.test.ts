import { describe, expect, it } from 'vitest';
import { crashRound } from './crash-round.js';
import { tempDir } from './helpers.js';

describe('crash safety (real process, SIGKILL mid-load)', () => {
  it('loses no acknowledged heartbeat over 3 kill -9 rounds', async () => {
    const t = tempDir();
    try {
      let acked = 0;
      for (let round = 0; round < 3; round++) {
        const r = await crashRound(t.dir, round);
        expect(r.lost).toBe(0);
        expect(r.duplicated).toBe(0);
        acked += r.acked;
      }
      expect(acked).toBeGreaterThan(0);
    } finally {
      t.cleanup();
    }
  }, 60_000);
});
