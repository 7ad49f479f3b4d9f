// m-of-n approval on two `vaultmesh-cc --store postgres` replicas: approvals of one proposal sent to both replicas
// at once. Each decision claims its slot (approval n of a proposal), so the threshold is reached exactly once (one
// signed command), one operator never counts twice, and the replicas converge on the same state.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt } from './process-helpers.js';
import { cleanupAfterEach, tempDir } from './helpers.js';
import { requirePostgres, startPostgres, type TestPostgres } from './postgres.js';
import { call, enrollNode, ReplicaSet, sql, type Answer } from './replicas.js';

const onCleanup = cleanupAfterEach();

describe.skipIf(!requirePostgres('approvals on PostgreSQL replicas'))('approvals on PostgreSQL replicas', () => {
  let server: TestPostgres;
  beforeAll(async () => {
    assertBuilt();
    server = await startPostgres();
  });
  afterAll(() => server?.stop());

  it('concurrent approvals on two replicas: the threshold is met exactly once, nobody counts twice, the replicas agree', async () => {
    const t = tempDir('vm-approvals-pg-');
    onCleanup(t.cleanup);
    const policy = join(t.dir, 'policy.json');
    writeFileSync(policy, JSON.stringify({ v: 1, profiles: { debian: { actions: ['ping', 'service-status'], units: ['*'], approvals: { ping: 2, 'service-status': 1 } } } }));
    const set = new ReplicaSet(await server.newDatabase(), t.dir, 2, ['--policy', policy, '--orchestrator-tick-secs', '0']);
    onCleanup(() => set.stop());
    await set.start();
    const urls = set.replicas.map((r) => r.url);

    const node = await enrollNode(set, 0, 'db-01');
    const tokens: Record<string, string> = {};
    for (const name of ['bob', 'carol', 'dave']) tokens[name] = (await set.api(0, 'POST', '/api/tokens', { name, scopes: ['commands:write', 'nodes:read'] })).json.token;
    await set.converge();
    const as = (who: string, on: number, path: string): Promise<Answer> => call(urls[on]!, 'POST', path, {}, { authorization: `Bearer ${tokens[who]}` });
    const issuedCount = async (id: string) =>
      (await sql<{ n: number }>(set.dbUrl, "SELECT count(*)::int AS n FROM envelopes WHERE kind = 'command' AND id = $1", [`cmd-issued-${id}`]))[0]!.n;

    for (let round = 0; round < 3; round++) {
      // 1 of n, raced by two operators on two replicas: one issues, the other finds it closed.
      const one = (await set.api(round % 2, 'POST', '/api/commands', { node_id: node.id, action: 'service-status', args: { unit: 'nginx.service' } })).json.id as string;
      const raced = await Promise.all([as('bob', 0, `/api/commands/${one}/approve`), as('carol', 1, `/api/commands/${one}/approve`)]);
      expect(raced.map((r) => r.status).sort(), JSON.stringify(raced.map((r) => r.json))).toEqual([200, 409]);
      expect(raced.find((r) => r.status === 409)!.json.error.code).toBe('PROPOSAL_CLOSED');
      expect(await issuedCount(one)).toBe(1);

      // 2 of n, three operators at once across both replicas: two approvals count (the second issues), one is closed.
      const two = (await set.api(0, 'POST', '/api/commands', { node_id: node.id, action: 'ping' })).json.id as string;
      const three = await Promise.all([as('bob', 0, `/api/commands/${two}/approve`), as('carol', 1, `/api/commands/${two}/approve`), as('dave', round % 2, `/api/commands/${two}/approve`)]);
      expect(three.map((r) => r.status).sort(), JSON.stringify(three.map((r) => r.json))).toEqual([200, 200, 409]);
      expect(await issuedCount(two)).toBe(1);

      // One operator approving the same proposal on both replicas at once counts once.
      const twice = (await set.api(1, 'POST', '/api/commands', { node_id: node.id, action: 'ping' })).json.id as string;
      const dup = await Promise.all([as('bob', 0, `/api/commands/${twice}/approve`), as('bob', 1, `/api/commands/${twice}/approve`)]);
      expect(dup.map((r) => r.status).sort()).toEqual([200, 409]);
      expect(dup.find((r) => r.status === 409)!.json.error.code).toBe('ALREADY_APPROVED');
      await set.converge();
      for (const i of [0, 1]) expect((await set.api(i, 'GET', `/api/commands/${twice}`)).json).toMatchObject({ status: 'proposed', proposal: { approvals: [{ by: 'token:bob' }] } });
    }
    await set.converge();
    expect(await set.digest(1)).toEqual(await set.digest(0));
  }, 120_000);
});
