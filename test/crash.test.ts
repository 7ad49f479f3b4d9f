import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { crashRound, type CrashStore } from './crash-round.js';
import { tempDir } from './helpers.js';
import { requirePostgres, startPostgres, type TestPostgres } from './postgres.js';

// Each store as the center process sees it: JSONL in the log dir, or a fresh PostgreSQL database.
const stores: Array<[string, () => Promise<CrashStore | undefined>]> = [['jsonl', async () => undefined]];
if (requirePostgres('crash safety on PostgreSQL')) {
  let server: TestPostgres | undefined;
  afterAll(() => server?.stop());
  stores.push([
    'postgres',
    async () => {
      server ??= await startPostgres();
      const url = await server.newDatabase();
      return {
        args: ['--store', 'postgres', '--database-url', url],
        async heartbeatLines() {
          const c = new pg.Client({ connectionString: url });
          await c.connect();
          try {
            const all = await c.query<{ seq: string }>('SELECT seq FROM envelopes ORDER BY seq');
            // Gapless: every seq from 1 to the last is there (a killed transaction took no seq with it).
            const seqs = all.rows.map((r) => Number(r.seq));
            if (seqs.some((s, i) => s !== i + 1)) throw new Error(`seq has gaps: ${seqs.join(',')}`);
            return (await c.query<{ line: Buffer }>("SELECT line FROM envelopes WHERE journal = 'heartbeats' ORDER BY seq")).rows.map((r) => r.line.toString('utf8'));
          } finally {
            await c.end();
          }
        },
      };
    },
  ]);
}

describe.each(stores)('crash safety (real process, SIGKILL mid-load, %s store)', (_name, storeOf) => {
  it('loses no acknowledged heartbeat over 3 kill -9 rounds', async () => {
    const t = tempDir();
    const store = await storeOf();
    try {
      let acked = 0;
      for (let round = 0; round < 3; round++) {
        const r = await crashRound(t.dir, round, store ? { store } : {});
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
