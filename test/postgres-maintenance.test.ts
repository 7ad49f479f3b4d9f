// Maintenance windows on replicas sharing PostgreSQL: a window started on one replica silences on every replica, an
// operator's end raced on two replicas journals one end (the `maintenance-end` claim), and the end at the end time is
// written once, by the leader.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt } from './process-helpers.js';
import { cleanupAfterEach, tempDir } from './helpers.js';
import { requirePostgres, startPostgres, type TestPostgres } from './postgres.js';
import { enrollNode, ReplicaSet, sql } from './replicas.js';

const onCleanup = cleanupAfterEach();

describe.skipIf(!requirePostgres('maintenance windows on PostgreSQL replicas'))('maintenance windows on PostgreSQL replicas', () => {
  let server: TestPostgres;
  beforeAll(async () => {
    assertBuilt();
    server = await startPostgres();
  });
  afterAll(() => server?.stop());

  it('silence on every replica, one end per window whether raced by operators or written by the leader', async () => {
    const t = tempDir('vm-mw-replicas-');
    onCleanup(t.cleanup);
    const set = new ReplicaSet(await server.newDatabase(), t.dir, 2, ['--heartbeat-secs', '1']);
    onCleanup(() => set.stop());
    await set.start();
    await enrollNode(set, 0, 'web-01');
    await set.converge();

    const raced = await set.api(0, 'POST', '/api/maintenance', { node_id: 'web-01', reason: 'raced end', for_secs: 3600 });
    expect(raced.status, JSON.stringify(raced.json)).toBe(201);
    const timed = await set.api(1, 'POST', '/api/maintenance', { node_id: 'web-01', reason: 'timed end', until: new Date(Date.now() + 6000).toISOString() });
    expect(timed.status, JSON.stringify(timed.json)).toBe(201);
    await set.converge();

    // web-01 never sends a heartbeat: without the windows it would be STALE on both replicas by now.
    await new Promise((r) => setTimeout(r, 2500));
    for (const i of [0, 1]) {
      const d = (await set.api(i, 'GET', '/api/nodes/web-01')).json;
      expect(d.attention.status, `replica ${i}`).toBe('ok');
      expect(d.attention.silenced.map((x: { code: string }) => x.code)).toContain('STALE');
      expect((await set.api(i, 'GET', '/api/maintenance')).json.items.map((w: { id: string }) => w.id).sort()).toEqual([raced.json.id, timed.json.id].sort());
    }

    const ends = await Promise.all([0, 1].map((i) => set.api(i, 'POST', `/api/maintenance/${raced.json.id}/end`)));
    expect(ends.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(ends.find((r) => r.status === 409)!.json.error.code).toBe('MAINTENANCE_ENDED');

    // The timed window is ended by the leader's timer, once, stamped with its planned end.
    const deadline = Date.now() + 10_000;
    let ended: any;
    while (Date.now() < deadline) {
      ended = (await set.api(1, 'GET', `/api/maintenance/${timed.json.id}`)).json;
      if (ended.ended_by) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(ended).toMatchObject({ state: 'ended', ended_by: 'system:maintenance', ended_early: false, ended_at: timed.json.ends_at });
    await new Promise((r) => setTimeout(r, 1500));
    const rows = await sql<{ body: string; n: number }>(set.dbUrl, "SELECT convert_from(line, 'UTF8')::jsonb->'body'->>'window_id' AS body, count(*)::int AS n FROM envelopes WHERE kind = 'maintenance' AND convert_from(line, 'UTF8')::jsonb->'body'->>'event' = 'ended' GROUP BY 1 ORDER BY 1");
    expect(rows.map((r) => [r.body, r.n]).sort()).toEqual([[raced.json.id, 1], [timed.json.id, 1]].sort());
    await set.converge();
    expect(await set.digest(1)).toEqual(await set.digest(0));
  });
});
