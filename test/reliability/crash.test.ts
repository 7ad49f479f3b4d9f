import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';
import { mixedCrashRound } from './mixed-crash-round.js';

const ROUNDS = Number(process.env.VAULTMESH_CRASH_ROUNDS ?? 50);

describe(`crash safety: ${ROUNDS} kill -9 rounds under heartbeat + event + scan load`, () => {
  it('loses no acknowledged envelope, stores none twice, sets torn tails aside, and the ledger verifies', async () => {
    const t = tempDir('vm-crash50-');
    const totals = { rounds: 0, heartbeat: 0, note: 0, scan: 0, lost: 0, duplicated: 0, tornTails: 0 };
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const r = await mixedCrashRound(t.dir, round);
        totals.rounds++;
        totals.heartbeat += r.acked.heartbeat;
        totals.note += r.acked.note;
        totals.scan += r.acked.scan;
        totals.lost += r.lost;
        totals.duplicated += r.duplicated;
        totals.tornTails += r.tornTails;
        expect(r.lost, `round ${round}`).toBe(0);
        expect(r.duplicated, `round ${round}`).toBe(0);
        expect(r.journalProblems, `round ${round}`).toEqual([]);
        expect(r.ledger.problems, `round ${round}`).toEqual([]);
        expect(r.ledger.ok, `round ${round}`).toBe(true);
      }
    } finally {
      const acked = totals.heartbeat + totals.note + totals.scan;
      console.log(`crash safety: ${totals.rounds} rounds, ${acked} acknowledged (${totals.heartbeat} heartbeats, ${totals.note} notes, ${totals.scan} scans), lost ${totals.lost}, duplicated ${totals.duplicated}, torn tails set aside ${totals.tornTails}`);
      t.cleanup();
    }
    expect(totals.heartbeat + totals.note + totals.scan).toBeGreaterThan(0);
  }, 1_800_000);
});
