import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, CLI_BIN, runNode } from './process-helpers.js';
import { cleanupAfterEach, enrolledNode, heartbeatBody, startTestCenter, tempDir } from './helpers.js';
import { requirePostgres, startPostgres, type TestPostgres } from './postgres.js';

const onCleanup = cleanupAfterEach();

const journalsOf = (dir: string) =>
  Object.fromEntries(
    readdirSync(dir)
      .filter((f) => f.endsWith('.jsonl') && readFileSync(join(dir, f)).length > 0) // the JSONL store also creates empty journals
      .sort()
      .map((f) => [f, readFileSync(join(dir, f))]),
  );

describe.skipIf(!requirePostgres('vaultmesh store copy'))('vaultmesh store copy', () => {
  let server: TestPostgres;
  beforeAll(async () => {
    assertBuilt();
    server = await startPostgres();
  });
  afterAll(() => server?.stop());

  it('JSONL → PostgreSQL → JSONL gives identical journal files, ledger verify passes on them, and a center on the database has the same state', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const src = join(t.dir, 'logs');
    const c1 = await startTestCenter(t.dir, { ledgerHeadSecs: 1 });
    const n = await enrolledNode(c1, 'n1');
    for (let i = 0; i < 5; i++) expect((await n.send('POST', '/api/agent/heartbeat', heartbeatBody('n1'))).status).toBe(200);
    expect((await c1.api('POST', '/api/events', { kind: 'note', body: { text: 'ünïcode ✓ and "quotes"' } })).status).toBe(201);
    expect((await c1.api('POST', '/api/commands', { node_id: 'n1', action: 'ping' })).status).toBe(201);
    const nodesBefore = (await c1.api('GET', '/api/nodes')).json;
    await c1.close();
    await (await startTestCenter(t.dir)).close(); // a start signs a head over lines written after the last one

    const url = await server.newDatabase();
    const there = await runNode(CLI_BIN, ['store', 'copy', '--from', src, '--to', url, '--json']);
    expect(there.stderr).toBe('');
    expect(there.code).toBe(0);
    const copied = JSON.parse(there.stdout);
    const back = join(t.dir, 'back');
    const again = await runNode(CLI_BIN, ['store', 'copy', '--from', url, '--to', back, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual(copied);
    expect(copied.envelopes).toBeGreaterThan(8);

    const original = journalsOf(src);
    expect(Object.keys(original)).toEqual(['commands.jsonl', 'events.jsonl', 'heartbeats.jsonl']);
    expect(journalsOf(back)).toEqual(original);

    // The signed heads stay in the log dir beside either store: with them, the round-tripped lines verify.
    for (const f of readdirSync(src).filter((f) => /(ROOT|PROOFCHAIN).*\.(txt|json)$/.test(f))) copyFileSync(join(src, f), join(back, f));
    const verify = await runNode(CLI_BIN, ['ledger', 'verify', '--dir', back, '--log', 'commands', '--json']);
    expect([verify.code, verify.stderr, verify.stdout]).toEqual([0, '', expect.any(String)]);
    const { elapsed_ms: _a, ...result } = JSON.parse(verify.stdout);
    const { elapsed_ms: _b, ...original_ } = JSON.parse((await runNode(CLI_BIN, ['ledger', 'verify', '--dir', src, '--log', 'commands', '--json'])).stdout);
    expect(result).toEqual(original_);
    expect(result).toMatchObject({ ok: true, tree_size: 1 });

    // A center on the database (same state dir and heads) replays the copy into the same fleet.
    const c2 = await startTestCenter(t.dir, { store: 'postgres', databaseUrl: url });
    onCleanup(() => c2.close());
    expect((await c2.api('GET', '/api/nodes')).json).toEqual(nodesBefore);
  });

  it('refuses a target that is not empty, a missing flag, and the same store twice', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir);
    expect((await c.api('POST', '/api/events', { kind: 'note', body: { text: 'x' } })).status).toBe(201);
    await c.close();
    const src = join(t.dir, 'logs');
    const url = await server.newDatabase();
    expect((await runNode(CLI_BIN, ['store', 'copy', '--from', src, '--to', url])).code).toBe(0);
    const twice = await runNode(CLI_BIN, ['store', 'copy', '--from', src, '--to', url]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toMatch(/already holds an envelope log \(up to seq \d+\)/);
    const intoFull = await runNode(CLI_BIN, ['store', 'copy', '--from', url, '--to', src]);
    expect(intoFull.code).toBe(2);
    expect(intoFull.stderr).toMatch(/already holds journals/);
    const noTo = await runNode(CLI_BIN, ['store', 'copy', '--from', src]);
    expect(noTo.code).toBe(2);
    expect(noTo.stderr).toMatch(/--to <log dir \| postgres URL> is required/);
    const same = await runNode(CLI_BIN, ['store', 'copy', '--from', src, '--to', src]);
    expect(same.code).toBe(2);
    expect(same.stderr).toMatch(/the same store/);
  });
});
