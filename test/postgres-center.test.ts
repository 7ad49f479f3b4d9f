import { chmodSync, cpSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { assertBuilt, CC_BIN, runNode } from './process-helpers.js';
import { cleanupAfterEach, openSse, startTestCenter, tempDir } from './helpers.js';
import { requirePostgres, startPostgres, type TestPostgres } from './postgres.js';
import { resolveCenterConfig } from '../command-center/config.js';

const onCleanup = cleanupAfterEach();

describe.skipIf(!requirePostgres('vaultmesh-cc on PostgreSQL'))('vaultmesh-cc on PostgreSQL', () => {
  let server: TestPostgres;
  beforeAll(async () => {
    assertBuilt();
    server = await startPostgres();
  });
  afterAll(() => server?.stop());

  it('vaultmesh-cc migrate creates the schema once, from the URL in a 0600 file; a readable file is refused', async () => {
    const url = await server.newDatabase();
    const t = tempDir();
    onCleanup(t.cleanup);
    const file = join(t.dir, 'database-url');
    writeFileSync(file, `${url}\n`, { mode: 0o644 });
    chmodSync(file, 0o644);
    const refused = await runNode(CC_BIN, ['migrate', '--database-url-file', file]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/INSECURE_KEY_FILE: .*database-url is accessible by group\/others \(mode 644\); run: chmod 600/);
    chmodSync(file, 0o600);
    const first = await runNode(CC_BIN, ['migrate', '--database-url-file', file]);
    expect(first).toMatchObject({ code: 0, stdout: "schema migrated from version 0 to 3: 1 (the envelope log and its seq counter), 2 (claims: one-time keys taken by appends across replicas), 3 (leadership term, the ledgers' signed tree heads, the heartbeat summary)\n" });
    const again = await runNode(CC_BIN, ['migrate'], { VAULTMESH_DATABASE_URL: url });
    expect(again).toMatchObject({ code: 0, stdout: 'schema already at version 3\n' });
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query("INSERT INTO schema_version (version, description) VALUES (4, 'from a newer center')");
    await c.end();
    const newer = await runNode(CC_BIN, ['migrate', '--database-url', url]);
    expect(newer.code).toBe(1);
    expect(newer.stderr).toMatch(/SCHEMA_TOO_NEW: the database schema is version 4, newer than this center knows \(3\)/);
  });

  it('--store postgres needs exactly one database URL setting', () => {
    expect(() => resolveCenterConfig({ store: 'postgres' }, {})).toThrow(/needs exactly one of --database-url/);
    expect(() => resolveCenterConfig({ store: 'postgres', databaseUrl: 'postgres://h/db', databaseUrlFile: '/x' }, {})).toThrow(/2 given/);
    expect(() => resolveCenterConfig({}, { VAULTMESH_STORE: 'postgres', VAULTMESH_DATABASE_URL: 'mysql://h/db' })).toThrow(/postgres:\/\/ or postgresql:\/\//);
    expect(resolveCenterConfig({}, { VAULTMESH_STORE: 'postgres', VAULTMESH_DATABASE_URL: 'postgresql://h/db' })).toMatchObject({ store: 'postgres', databaseUrl: 'postgresql://h/db' });
  });

  it('a center on PostgreSQL journals nothing in the log dir, answers 503 while the database is down, keeps serving reads, and resumes without a restart', async () => {
    const own = await startPostgres();
    onCleanup(() => own.stop());
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir, { store: 'postgres', databaseUrl: await own.newDatabase() });
    onCleanup(() => c.close());
    expect((await c.api('POST', '/api/events', { kind: 'note', body: { text: 'one' } })).status).toBe(201);
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(join(t.dir, 'logs')).filter((f) => f.endsWith('.jsonl'))).toEqual([]);
    await own.kill9();
    const down = await c.api('POST', '/api/events', { kind: 'note', body: { text: 'two' } });
    expect(down.status).toBe(503);
    expect(down.json.error.code).toBe('JOURNAL_UNAVAILABLE');
    const listed = await c.api('GET', '/api/nodes');
    expect(listed.status).toBe(200);
    await own.restart();
    const back = await c.api('POST', '/api/events', { kind: 'note', body: { text: 'three' } });
    expect(back.status).toBe(201);
    expect(back.json.seq).toBe(2);
  });

  it('a center whose state dir lost its key refuses to start on a database that holds a log (CENTER_KEY_MISSING), and creates no key', async () => {
    const url = await server.newDatabase();
    const t = tempDir();
    onCleanup(t.cleanup);
    const first = await startTestCenter(t.dir, { store: 'postgres', databaseUrl: url });
    expect((await first.api('POST', '/api/events', { kind: 'note', body: { text: 'one' } })).status).toBe(201);
    await first.close();
    const lost = join(t.dir, 'state-lost');
    await expect(startTestCenter(t.dir, { store: 'postgres', databaseUrl: url, stateDir: lost })).rejects.toMatchObject({ code: 'CENTER_KEY_MISSING' });
    expect(existsSync(join(lost, 'cc-key.pem'))).toBe(false);
    // An empty database is a first start: the key is created.
    const fresh = await startTestCenter(t.dir, { store: 'postgres', databaseUrl: await server.newDatabase(), stateDir: lost, logDir: join(t.dir, 'logs-fresh') });
    onCleanup(() => fresh.close());
    expect(existsSync(join(lost, 'cc-key.pem'))).toBe(true);
  });

  it('a second center on the same database is a replica that writes too (--standby is accepted and changes nothing): SSE ids are the same seqs on both', async () => {
    const url = await server.newDatabase();
    const a = tempDir();
    const b = tempDir();
    onCleanup(a.cleanup);
    onCleanup(b.cleanup);
    const first = await startTestCenter(a.dir, { store: 'postgres', databaseUrl: url });
    onCleanup(() => first.close());
    expect((await first.api('POST', '/api/events', { kind: 'note', body: { text: 'before' } })).status).toBe(201);
    // A replica shares the center's key and admin token (a copy of the state dir), not its log dir.
    cpSync(join(a.dir, 'state'), join(b.dir, 'state'), { recursive: true, filter: (src) => !src.endsWith('.sock') && !src.endsWith('.lock') });
    const second = await startTestCenter(b.dir, { store: 'postgres', databaseUrl: url, standby: true });
    onCleanup(() => second.close());
    const sse = await openSse(`${second.url}/events`, { authorization: `Bearer ${second.adminToken}` });
    onCleanup(() => sse.close());
    const posted = await first.api('POST', '/api/events', { kind: 'note', body: { text: 'after' } });
    const seen = await sse.waitFor((e) => e.event === 'note');
    expect([seen.id, JSON.parse(seen.data).body.text]).toEqual([String(posted.json.seq), 'after']);
    const own = await second.api('POST', '/api/events', { kind: 'note', body: { text: 'on the second' } });
    expect([own.status, own.json.seq]).toEqual([201, posted.json.seq + 1]);
    // The first one answers it too once it follows (read-your-writes holds on the replica written to).
    await first.services.syncLog();
    expect(first.services.state.lastSeq).toBe(own.json.seq);
    await first.close();
    const after = await second.api('POST', '/api/events', { kind: 'note', body: { text: 'alone' } });
    expect([after.status, after.json.seq]).toEqual([201, own.json.seq + 1]);
  });
});
