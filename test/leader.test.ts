/**
 * One leader among centers on one PostgreSQL database, with real processes: the leader runs the singletons (here:
 * webhook delivery) and signs the ledger heads, kept in the database; followers serve the same heads; killing the
 * leader with -9 hands leadership (and signing) to a follower within the takeover period.
 *
 * Until every replica may write (a separate change), the second center is a `--standby`; nothing here depends on it
 * refusing writes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import pg from 'pg';
import { request } from 'undici';
import { cleanupAfterEach, enrolledNode, heartbeatBody, quietLogger, startTestCenter, tempDir, testNode } from './helpers.js';
import { createPostgresHeartbeatRetention } from '../command-center/store/postgres-retention.js';
import { requirePostgres, startPostgres, type TestPostgres } from './postgres.js';
import { assertBuilt, CLI_BIN, runNode, spawnCenter, type CenterProcess } from './process-helpers.js';

const onCleanup = cleanupAfterEach();

interface Replica extends CenterProcess {
  dir: string;
  token: string;
  api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }>;
  health(): Promise<{ role: string; tail_lag: number | null; seq: number }>;
}

async function replica(dir: string, url: string, extra: string[] = []): Promise<Replica> {
  const p = await spawnCenter(['--store', 'postgres', '--database-url', url, '--log-dir', join(dir, 'logs'), '--state-dir', join(dir, 'state'), '--admin-socket-off', ...extra]);
  onCleanup(async () => {
    if (p.child.exitCode === null && p.child.signalCode === null) {
      p.child.kill('SIGTERM');
      await p.exited;
    }
  });
  const token = readFileSync(join(dir, 'state', 'admin.token'), 'utf8').trim();
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await request(p.url + path, {
      method: method as 'GET',
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.body.text();
    return { status: res.statusCode, json: text ? JSON.parse(text) : undefined };
  };
  return Object.assign(p, { dir, token, api, health: async () => (await (await request(`${p.url}/healthz`)).body.json()) as any });
}

async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A webhook receiver counting deliveries per delivery id. */
async function receiver(): Promise<{ url: string; deliveries: Map<string, number>; server: Server }> {
  const deliveries = new Map<string, number>();
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const id = String(req.headers['x-vaultmesh-delivery']);
      deliveries.set(id, (deliveries.get(id) ?? 0) + 1);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  onCleanup(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`, deliveries, server };
}

describe.skipIf(!requirePostgres('one leader among centers on PostgreSQL'))('one leader among centers on PostgreSQL', () => {
  let server: TestPostgres;
  beforeAll(async () => {
    assertBuilt();
    server = await startPostgres();
  });
  afterAll(() => server?.stop());

  it('one leader delivers each webhook once and signs the heads every replica serves; after kill -9 a follower leads and signs', async () => {
    const url = await server.newDatabase();
    const hook = await receiver();
    const a = tempDir();
    const b = tempDir();
    onCleanup(a.cleanup);
    onCleanup(b.cleanup);
    const common = ['--leader-takeover-secs', '1', '--ledger-head-secs', '1', '--webhook-urls', hook.url];
    const first = await replica(a.dir, url, common);
    expect(await until('first leads', async () => (await first.health()).role === 'leader')).toBe(true);
    // The second shares the key, the admin token and the webhook secret (a copy of the state dir), not the log dir.
    cpSync(join(a.dir, 'state'), join(b.dir, 'state'), { recursive: true, filter: (src) => !src.endsWith('.sock') && !src.endsWith('.lock') });
    const second = await replica(b.dir, url, [...common, '--standby']);
    await new Promise((r) => setTimeout(r, 1500)); // more than one takeover period: the second must stay a follower
    const [h1, h2] = [await first.health(), await second.health()];
    expect([h1.role, h2.role]).toEqual(['leader', 'follower']);
    expect([h1.tail_lag, h2.tail_lag]).toEqual([0, 0]);

    // Webhooks: both replicas apply the incident, only the leader delivers it.
    const inc = await first.api('POST', '/api/events', { kind: 'incident', body: { title: 'disk on fire', severity: 'critical' } });
    expect(inc.status).toBe(201);
    await until('delivered', async () => hook.deliveries.size > 0);
    await until('the follower applied it', async () => (await second.health()).seq >= inc.json.seq);
    await new Promise((r) => setTimeout(r, 2500)); // the follower's delivery tick would have run twice by now
    expect([...hook.deliveries.values()]).toEqual([1]);

    // A command is a leaf of the commands ledger: the leader signs a head, the follower serves the same one.
    const tok = await first.api('POST', '/api/join-tokens', { uses: 1 });
    const node = testNode(first, 'n1');
    const enrolled = await node.send('POST', '/api/agent/enroll', { token: tok.json.token, node_id: 'n1', hostname: 'n1.example', os_profile: 'debian', public_key: node.key.publicKeyHex, agent_version: '0.1.0', facts: {} });
    expect(enrolled.status).toBeLessThan(300);
    expect((await first.api('POST', '/api/nodes/n1/approve')).status).toBe(200);
    expect((await first.api('POST', '/api/commands', { node_id: 'n1', action: 'ping' })).status).toBe(201);
    const signed = await until('the leader signs', async () => {
      const r = await first.api('GET', '/api/ledger/root');
      return r.json.commands.head?.tree_size === 1 && r.json.commands.head;
    });
    const served = await until('the follower serves the head', async () => {
      const r = await second.api('GET', '/api/ledger/root');
      return r.json.commands.head?.tree_size === 1 && r.json.commands.head;
    });
    expect(served).toEqual(signed);

    // kill -9 the leader: the follower leads within the period and signs a head over an entry appended after the kill.
    first.child.kill('SIGKILL');
    await first.exited;
    await until('the follower leads', async () => (await second.health()).role === 'leader', 5000);
    const issued = await until('the new leader accepts writes', async () => {
      const r = await second.api('POST', '/api/commands', { node_id: 'n1', action: 'ping' });
      return r.status === 201 && r;
    });
    expect(issued.status).toBe(201);
    const next = await until('the new leader signs', async () => {
      const r = await second.api('GET', '/api/ledger/root');
      return r.json.commands.head?.tree_size === 2 && r.json.commands.head;
    });
    expect(next.previous_head_hash).not.toBeNull();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    onCleanup(() => c.end());
    const rows = (await c.query<{ idx: string; term: string; tree_size: string }>("SELECT idx, term, tree_size FROM ledger_heads WHERE log = 'commands' ORDER BY idx")).rows;
    expect(rows.map((r) => [Number(r.idx), Number(r.tree_size)])).toEqual([
      [0, 1],
      [1, 2],
    ]);
    expect(Number(rows[1]!.term)).toBeGreaterThan(Number(rows[0]!.term));
  });

  it('ledger export writes what ledger verify checks offline: it passes, and fails on a changed line; /healthz and metrics show role and lag', async () => {
    const url = await server.newDatabase();
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir, { store: 'postgres', databaseUrl: url, ledgerHeadSecs: 1, leaderTakeoverSecs: 1 });
    onCleanup(() => c.close());
    await until('it leads', async () => c.services.leadership.isLeader);
    const health = (await (await request(`${c.url}/healthz`)).body.json()) as any;
    expect([health.role, health.tail_lag]).toEqual(['leader', 0]);
    await enrolledNode(c, 'n1');
    for (let i = 0; i < 3; i++) expect((await c.api('POST', '/api/commands', { node_id: 'n1', action: 'ping' })).status).toBe(201);
    await until('signed', async () => c.services.ledgers.commands.latestHead()?.tree_size === 3);
    const metrics = await (await request(`${c.url}/metrics`, { headers: { authorization: `Bearer ${c.adminToken}` } })).body.text();
    expect(metrics).toMatch(/^vaultmesh_leader 1$/m);
    expect(metrics).toMatch(/^vaultmesh_leader_changes_total 1$/m);
    expect(metrics).toMatch(/^vaultmesh_tail_lag_seq 0$/m);

    const out = join(t.dir, 'export');
    const exported = await runNode(CLI_BIN, ['ledger', 'export', '--database-url', url, '--out', out, '--json']);
    expect(exported.stderr).toBe('');
    expect(exported.code).toBe(0);
    const r = JSON.parse(exported.stdout);
    expect(r.ledgers.find((l: any) => l.log === 'commands')).toMatchObject({ heads: 1, tree_size: 3, unsigned: 0 });
    expect(readdirSync(out)).toEqual(expect.arrayContaining(['commands.jsonl', 'COMMANDS_PROOFCHAIN.json', 'COMMANDS_ROOT.txt']));
    const verified = await runNode(CLI_BIN, ['ledger', 'verify', '--dir', out, '--log', 'commands', '--json']);
    expect([verified.code, JSON.parse(verified.stdout).ok]).toEqual([0, true]);
    expect((await runNode(CLI_BIN, ['ledger', 'verify', '--dir', out, '--log', 'scans'])).code).toBe(0);

    // One changed byte in a signed line: verify fails, naming it.
    const journal = join(out, 'commands.jsonl');
    const lines = readFileSync(journal, 'utf8').split('\n');
    lines[1] = lines[1]!.replace('"ping"', '"pong"');
    writeFileSync(journal, lines.join('\n'));
    const tampered = await runNode(CLI_BIN, ['ledger', 'verify', '--dir', out, '--log', 'commands']);
    expect(tampered.code).toBe(1);
    expect(tampered.stdout).toMatch(/^FAILED: head #0 \(tree_size 3\): root_hash does not match lines 1\.\.3 of commands\.jsonl/);

    // A database URL in a file others can read is refused, like the center's.
    const file = join(t.dir, 'url');
    writeFileSync(file, url, { mode: 0o644 });
    const refused = await runNode(CLI_BIN, ['ledger', 'export', '--database-url-file', file, '--out', join(t.dir, 'other')]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/INSECURE_KEY_FILE/);
  });

  it('--new-center-key on a database whose heads were signed by a lost key: the new key continues the chain in the database, and the export verifies', async () => {
    const url = await server.newDatabase();
    const t = tempDir();
    onCleanup(t.cleanup);
    const old = await startTestCenter(t.dir, { store: 'postgres', databaseUrl: url, ledgerHeadSecs: 1, leaderTakeoverSecs: 1 });
    await until('it leads', async () => old.services.leadership.isLeader);
    await enrolledNode(old, 'n1');
    expect((await old.api('POST', '/api/commands', { node_id: 'n1', action: 'ping' })).status).toBe(201);
    await until('signed', async () => old.services.ledgers.commands.latestHead()?.tree_size === 1);
    const oldKey = old.services.centerKey.publicKeyHex;
    await old.close();

    // The state dir and the log dir are gone; the database is all that is left.
    const lost = { stateDir: join(t.dir, 'state-new'), logDir: join(t.dir, 'logs-new') };
    await expect(startTestCenter(t.dir, { store: 'postgres', databaseUrl: url, ...lost })).rejects.toMatchObject({ code: 'CENTER_KEY_MISSING' });
    const c = await startTestCenter(t.dir, { store: 'postgres', databaseUrl: url, ...lost, newCenterKey: true, ledgerHeadSecs: 1, leaderTakeoverSecs: 1 });
    onCleanup(() => c.close());
    expect(c.services.centerKey.publicKeyHex).not.toBe(oldKey);
    expect(readFileSync(join(lost.stateDir, 'previous-keys'), 'utf8')).toContain(oldKey);
    await until('it leads', async () => c.services.leadership.isLeader);
    expect(c.services.ledgers.commands.latestHead()?.tree_size).toBe(1); // adopted from the database
    expect((await c.api('POST', '/api/commands', { node_id: 'n1', action: 'ping' })).status).toBe(201);
    const head = await until('signed by the new key', async () => c.services.ledgers.commands.latestHead()?.tree_size === 2 && c.services.ledgers.commands.latestHead());
    expect(head.key_id).toBe(c.services.centerKey.keyId);

    const out = join(t.dir, 'export');
    expect((await runNode(CLI_BIN, ['ledger', 'export', '--database-url', url, '--out', out])).code).toBe(0);
    const verified = await runNode(CLI_BIN, ['ledger', 'verify', '--dir', out, '--log', 'commands', '--json']);
    expect([verified.code, JSON.parse(verified.stdout).heads]).toEqual([0, 2]);
  });

  it('heartbeat retention in the database: old heartbeats go, each node keeps its newest ones, and a replay equals the state before', async () => {
    const url = await server.newDatabase();
    const t = tempDir();
    onCleanup(t.cleanup);
    const today = Date.now();
    let clock = today - 40 * 86_400_000; // the center starts 40 days ago: requests signed before its start are refused
    const now = () => new Date(clock);
    const settings = { store: 'postgres', databaseUrl: url, historySize: 4, heartbeatRetentionDays: 0, maxSkewSecs: 3600 };
    const c = await startTestCenter(t.dir, settings, { now });
    const beat = async (n: ReturnType<typeof testNode>) => {
      const r = await n.send('POST', '/api/agent/heartbeat', heartbeatBody(n.id, { timestamp: now().toISOString() }), { now });
      expect([r.status, r.json]).toEqual([200, expect.anything()]);
      clock += 60_000;
    };
    const enroll = async (id: string) => {
      const tok = await c.api('POST', '/api/join-tokens', { uses: 1 });
      const n = testNode(c, id);
      const r = await n.send('POST', '/api/agent/enroll', { token: tok.json.token, node_id: id, hostname: `${id}.example`, os_profile: 'debian', public_key: n.key.publicKeyHex, agent_version: '0.1.0', facts: {} }, { now });
      expect(r.status).toBeLessThan(300);
      expect((await c.api('POST', `/api/nodes/${id}/approve`)).status).toBe(200);
      return n;
    };
    const n1 = await enroll('n1');
    const n2 = await enroll('n2');
    for (let i = 0; i < 10; i++) await beat(n1);
    for (let i = 0; i < 3; i++) await beat(n2);
    clock = today;
    for (let i = 0; i < 3; i++) await beat(n1);
    const snapshot = (s: typeof c.services.state) => ({
      total: s.counts.heartbeat,
      nodes: ['n1', 'n2'].map((id) => {
        const n = s.nodes.get(id)!;
        return { id, count: n.heartbeat_count, first: n.first_seen, last: n.last_seen, history: n.history.samples() };
      }),
    });
    const before = snapshot(c.services.state);
    expect(before.total).toBe(16);
    await c.close();

    const retention = createPostgresHeartbeatRetention({ url, days: 30, keepPerNode: 4, nodes: () => ['n1', 'n2'], now, log: quietLogger, batch: 2 });
    const ran = await retention.runOnce();
    // n1: 10 old + 3 new, its newest 4 stay (3 new, 1 old): 9 go. n2: 3 old, fewer than 4: all stay.
    expect(ran.deleted).toBe(9);
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    onCleanup(() => db.end());
    const left = await db.query<{ node_id: string; n: string }>("SELECT node_id, count(*) AS n FROM envelopes WHERE journal = 'heartbeats' GROUP BY node_id ORDER BY node_id");
    expect(left.rows.map((r) => [r.node_id, Number(r.n)])).toEqual([
      ['n1', 4],
      ['n2', 3],
    ]);
    expect(await retention.runOnce()).toEqual({ throughSeq: ran.throughSeq, deleted: 0 }); // nothing more to do

    const again = await startTestCenter(t.dir, settings, { now });
    onCleanup(() => again.close());
    expect(snapshot(again.services.state)).toEqual(before);
  });
});
