// `npm run test:reliability`: 20 rounds (VAULTMESH_REPLICA_CRASH_ROUNDS) of kill -9 on a random one of three
// replicas (the leader or a follower; every fourth round the leader, so the soak always has leader kills) on one
// PostgreSQL database under heartbeat + note load, with the leader checks of test/replica-crash-round.ts; the
// default suite runs 2 of the same rounds (test/postgres-replicas.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';
import { assertBuilt } from '../process-helpers.js';
import { requirePostgres, startPostgres, type TestPostgres } from '../postgres.js';
import { enrollNode, percentile, ReplicaSet } from '../replicas.js';
import { killLeader, LEADER_ARGS, LEADER_BOUNDS, randomVictim, replicaCrashRound } from '../replica-crash-round.js';

const ROUNDS = Number(process.env.VAULTMESH_REPLICA_CRASH_ROUNDS ?? 20);

describe.skipIf(!requirePostgres('replica kill -9 soak'))(`replicas: ${ROUNDS} kill -9 rounds under load`, () => {
  let server: TestPostgres;
  beforeAll(async () => {
    assertBuilt();
    server = await startPostgres();
  });
  afterAll(() => server?.stop());

  it('loses no acknowledged envelope, stores none twice, keeps seqs gapless, and every replica equals a fresh replay', async () => {
    const t = tempDir('vm-replica-crash-');
    const set = new ReplicaSet(await server.newDatabase(), t.dir, 3, LEADER_ARGS);
    const totals = { rounds: 0, acked: 0, lost: 0, duplicated: 0, kills: [0, 0, 0], leaderKills: 0, takeovers: [] as number[], heads: [] as number[] };
    try {
      await set.start();
      const nodes = [];
      for (let k = 0; k < 3; k++) nodes.push(await enrollNode(set, k, `soak-${k}`));
      await set.converge();
      for (let round = 0; round < ROUNDS; round++) {
        const r = await replicaCrashRound(set, nodes, round, { loadMs: 800, pick: round % 4 === 0 ? killLeader : randomVictim, leader: LEADER_BOUNDS });
        totals.rounds++;
        totals.acked += r.acked;
        totals.lost += r.lost;
        totals.duplicated += r.duplicated;
        totals.kills[r.killed]!++;
        if (r.leaderKilled) totals.leaderKills++;
        if (r.takeoverMs !== undefined) totals.takeovers.push(r.takeoverMs);
        if (r.leaderKilled && r.headMs !== undefined) totals.heads.push(r.headMs);
        expect(r.lost, `round ${round}`).toBe(0);
        expect(r.duplicated, `round ${round}`).toBe(0);
      }
    } finally {
      const ms = (v: number[]) => (v.length ? `p50 ${Math.round(percentile(v, 50))} ms, max ${Math.round(Math.max(...v))} ms` : 'none');
      console.log(
        `replica crash soak: ${totals.rounds} rounds, ${totals.acked} acknowledged, lost ${totals.lost}, duplicated ${totals.duplicated}, kills per replica ${totals.kills.join('/')}, ` +
          `leader kills ${totals.leaderKills}, takeover (kill → new leader) ${ms(totals.takeovers)}, leader kill → head over leaves appended after it ${ms(totals.heads)}`,
      );
      await set.stop();
      t.cleanup();
    }
    expect(totals.acked).toBeGreaterThan(0);
    expect(totals.leaderKills).toBeGreaterThan(0);
  }, 1_800_000);
});
