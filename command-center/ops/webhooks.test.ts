import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Envelope } from '../../protocol/envelope.js';
import { readFileSync } from 'node:fs';
import { startCenter } from '../center.js';
import { resolveCenterConfig } from '../config.js';
import { createWebhooks, signWebhook } from './webhooks.js';
import { manualTimers } from '../../test/helpers.js';

const dirs: string[] = [];
const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A local receiver answering with the scripted statuses (then 200), recording what it got. */
async function receiver(statuses: number[]) {
  const got: Array<{ headers: IncomingMessage['headers']; body: string }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      res.statusCode = statuses.shift() ?? 200;
      res.end();
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got };
}

const env = (seq: number, kind: string): Envelope => ({ v: 1, id: `e${seq}`, seq, ts: '2025-01-01T00:00:00.000Z', kind, node_id: 'n1', author: 'system:attention', body: { status: 'crit', previous: 'ok', reasons: [] } });

function setup(url: string, file?: string) {
  const dir = mkdtempSync(join(tmpdir(), 'vm-hooks-'));
  dirs.push(dir);
  let now = Date.parse('2025-01-01T00:00:00Z');
  const hooks = createWebhooks({ urls: [url], secret: 's3cret', outboxFile: file ?? join(dir, 'webhooks-outbox.jsonl'), now: () => new Date(now), baseDelayMs: 1000, maxAttempts: 3 });
  return { hooks, file: file ?? join(dir, 'webhooks-outbox.jsonl'), advance: (ms: number) => (now += ms) };
}

describe('webhooks', () => {
  it('signs the exact body with HMAC-SHA256 over timestamp.body; only attention and incident kinds', async () => {
    const r = await receiver([]);
    const { hooks } = setup(r.url);
    hooks.onCommit([{ envelope: env(1, 'attention') }, { envelope: env(2, 'heartbeat') }, { envelope: env(3, 'note') }, { envelope: env(4, 'incident') }]);
    await hooks.deliverDue();
    expect(r.got).toHaveLength(2);
    const first = r.got[0]!;
    expect(first.headers['x-vaultmesh-signature']).toBe(signWebhook('s3cret', String(first.headers['x-vaultmesh-timestamp']), first.body));
    expect(first.headers['x-vaultmesh-event']).toBe('attention');
    expect(JSON.parse(first.body).envelope.seq).toBe(1);
    expect(hooks.status()).toMatchObject({ pending: 0, delivered: 2, failed: 0 });
  });

  it('delivers command proposals, denials and expiries, not other command events, also for a node in maintenance', async () => {
    const r = await receiver([]);
    const dir = mkdtempSync(join(tmpdir(), 'vm-hooks-'));
    dirs.push(dir);
    const hooks = createWebhooks({ urls: [r.url], secret: 's', outboxFile: join(dir, 'outbox.jsonl'), maintenance: { isHeld: () => true, summary: () => undefined } });
    const cmd = (seq: number, event: string): Envelope => ({ ...env(seq, 'command'), author: 'alice', body: { event, command_id: 'c1' } });
    hooks.onCommit(['proposed', 'approved', 'issued', 'delivered', 'receipt', 'completed', 'denied', 'proposal_expired'].map((e, i) => ({ envelope: cmd(i + 1, e) })));
    hooks.onCommit([{ envelope: env(20, 'incident') }]); // held: the node is covered
    await hooks.deliverDue();
    expect(r.got.map((g) => [g.headers['x-vaultmesh-event'], JSON.parse(g.body).envelope.body.event])).toEqual([
      ['command', 'proposed'],
      ['command', 'denied'],
      ['command', 'proposal_expired'],
    ]);
    expect(hooks.status().held).toBe(1);
  });

  it('retries with backoff, survives a restart, and gives up after maxAttempts', async () => {
    const r = await receiver([500, 503]);
    const a = setup(r.url);
    a.hooks.onCommit([{ envelope: env(1, 'incident') }]);
    await a.hooks.deliverDue(); // 500
    await a.hooks.deliverDue(); // not due yet (1 s backoff)
    expect(r.got).toHaveLength(1);
    expect(a.hooks.status().items[0]).toMatchObject({ status: 'pending', attempts: 1, last_error: 'HTTP 500' });

    // Restart: a new instance reads the outbox file and continues.
    const b = setup(r.url, a.file);
    b.advance(1000);
    await b.hooks.deliverDue(); // 503
    b.advance(1999);
    await b.hooks.deliverDue(); // backoff is 2 s now: not yet
    b.advance(1);
    await b.hooks.deliverDue(); // 200
    expect(r.got).toHaveLength(3);
    expect(b.hooks.status()).toMatchObject({ delivered: 1, pending: 0 });

    const dead = setup('http://127.0.0.1:1/unreachable');
    dead.hooks.onCommit([{ envelope: env(9, 'resolve') }]);
    for (let i = 0; i < 5; i++) {
      await dead.hooks.deliverDue();
      dead.advance(60_000);
    }
    expect(dead.hooks.status()).toMatchObject({ failed: 1, pending: 0 });
    expect(dead.hooks.status().items[0]!.attempts).toBe(3);
  });

  it('delivers on the tick of its timers; stop() waits for the delivery in flight and clears the tick', async () => {
    const r = await receiver([]);
    const manual = manualTimers();
    const dir = mkdtempSync(join(tmpdir(), 'vm-hooks-'));
    dirs.push(dir);
    const hooks = createWebhooks({ urls: [r.url], secret: 's3cret', outboxFile: join(dir, 'webhooks-outbox.jsonl'), now: () => new Date(0), tickMs: 1000, timers: manual.timers });
    hooks.onCommit([{ envelope: env(1, 'incident') }]);
    hooks.start();
    hooks.start(); // one tick, not two
    expect(manual.active).toBe(1);
    expect(r.got).toHaveLength(0); // nothing is sent before the tick
    manual.advance(1000);
    await hooks.stop();
    expect(r.got).toHaveLength(1);
    expect(hooks.status()).toMatchObject({ delivered: 1, pending: 0 });
    expect(manual.active).toBe(0);
  });

  it('keeps the outbox bounded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vm-hooks-'));
    dirs.push(dir);
    const hooks = createWebhooks({ urls: ['http://127.0.0.1:1/x'], secret: 's', outboxFile: join(dir, 'o.jsonl'), maxOutbox: 5 });
    for (let i = 1; i <= 8; i++) hooks.onCommit([{ envelope: env(i, 'incident') }]);
    expect(hooks.status()).toMatchObject({ pending: 5, dropped: 3 });
    expect(hooks.status().items.map((d) => d.seq)).toEqual([8, 7, 6, 5, 4]);
  });
});

describe('webhooks in a running center', () => {
  it('delivers an incident to a configured URL and reports it on GET /api/webhooks', async () => {
    const r = await receiver([]);
    const dir = mkdtempSync(join(tmpdir(), 'vm-hooks-cc-'));
    dirs.push(dir);
    const config = resolveCenterConfig({ port: 0, logDir: join(dir, 'logs'), stateDir: join(dir, 'state'), fsync: 'off', webhookUrls: r.url }, {});
    const center = await startCenter(config, { log: { info: () => {}, warn: () => {}, error: () => {} } });
    try {
      const token = readFileSync(center.adminTokenFile, 'utf8').trim();
      const auth = { authorization: `Bearer ${token}` };
      const post = await fetch(`${center.url}/api/events`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'incident', body: { title: 'x', severity: 'low' } }) });
      expect(post.status).toBe(201);
      await center.services.webhooks!.deliverDue();
      expect(r.got).toHaveLength(1);
      const secret = readFileSync(join(dir, 'state', 'webhook.secret'), 'utf8').trim();
      expect(r.got[0]!.headers['x-vaultmesh-signature']).toBe(signWebhook(secret, String(r.got[0]!.headers['x-vaultmesh-timestamp']), r.got[0]!.body));
      const status = (await (await fetch(`${center.url}/api/webhooks`, { headers: auth })).json()) as any;
      expect(status).toMatchObject({ enabled: true, urls: [r.url], delivered: 1, items: [{ kind: 'incident', status: 'delivered' }] });
      expect(status.items[0].payload).toBeUndefined();
    } finally {
      await center.close();
    }
  });

  it('a restart replays the incident into state but does not send it again (reactors never see replay)', async () => {
    const r = await receiver([]);
    const dir = mkdtempSync(join(tmpdir(), 'vm-hooks-cc-'));
    dirs.push(dir);
    const config = resolveCenterConfig({ port: 0, logDir: join(dir, 'logs'), stateDir: join(dir, 'state'), fsync: 'off', webhookUrls: r.url }, {});
    const quiet = { info: () => {}, warn: () => {}, error: () => {} };
    const first = await startCenter(config, { log: quiet });
    try {
      const token = readFileSync(first.adminTokenFile, 'utf8').trim();
      const post = await fetch(`${first.url}/api/events`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'incident', body: { title: 'x', severity: 'low' } }) });
      expect(post.status).toBe(201);
      await first.services.webhooks!.deliverDue();
      expect(r.got).toHaveLength(1);
    } finally {
      await first.close();
    }
    const second = await startCenter(config, { log: quiet });
    try {
      expect(second.services.state.incidents.open.size).toBe(1); // the projection was rebuilt
      await second.services.webhooks!.deliverDue();
      expect(r.got).toHaveLength(1);
      expect(second.services.webhooks!.status()).toMatchObject({ pending: 0, delivered: 1 });
    } finally {
      await second.close();
    }
  });
});

describe('webhooks during maintenance windows', () => {
  it('holds deliveries about covered nodes and sends exactly one summary when the window ends', async () => {
    const { applyEnvelope, createFleetState } = await import('../fleet/fleet-state.js');
    const { isHeldEnvelope, maintenanceSummary } = await import('./maintenance.js');
    const { HeartbeatHistory } = await import('../fleet/heartbeat-history.js');
    const r = await receiver([]);
    const dir = mkdtempSync(join(tmpdir(), 'vm-hooks-'));
    dirs.push(dir);
    const state = createFleetState();
    for (const id of ['n1', 'n2']) {
      state.nodes.set(id, { node_id: id, hostname: id, os_profile: 'debian', enrollment: 'approved', public_key: '', key_id: '', agent_version: '1', facts: {}, enrolled_at: '2025-01-01T00:00:00.000Z', heartbeat_count: 0, history: new HeartbeatHistory(4), tags: [] });
    }
    const hooks = createWebhooks({ urls: [r.url], secret: 's', outboxFile: join(dir, 'o.jsonl'), now: () => new Date('2025-01-01T02:00:00Z'), maintenance: { isHeld: (e) => isHeldEnvelope(state, e), summary: (e) => maintenanceSummary(state, e) } });
    let seq = 0;
    const commit = (e: Omit<Envelope, 'v' | 'seq' | 'id'>) => {
      const envelope = { v: 1, seq: ++seq, id: `e${seq}`, ...e } as Envelope;
      applyEnvelope(state, envelope); // projections first, then the reactor, as in the center
      hooks.onCommit([{ envelope }]);
    };
    const att = (node: string, ts: string) => commit({ ts, kind: 'attention', node_id: node, author: 'system:attention', body: { status: 'crit', previous: 'ok', reasons: [] } });
    commit({ ts: '2025-01-01T00:00:00.000Z', kind: 'maintenance', node_id: 'n1', author: 'op', body: { event: 'started', window_id: 'mw-1', target: { node_id: 'n1' }, reason: 'r', starts_at: '2025-01-01T00:00:00.000Z', ends_at: '2025-01-01T01:00:00.000Z', scans: 'defer' } });
    att('n1', '2025-01-01T00:10:00.000Z');
    att('n1', '2025-01-01T00:20:00.000Z');
    att('n2', '2025-01-01T00:20:00.000Z'); // not covered: delivered
    commit({ ts: '2025-01-01T00:25:00.000Z', kind: 'incident', node_id: 'n1', author: 'op', body: { title: 't', severity: 'high', status: 'open' } });
    commit({ ts: '2025-01-01T00:40:00.000Z', kind: 'maintenance', node_id: 'n1', author: 'op', body: { event: 'ended', window_id: 'mw-1', early: true } });
    commit({ ts: '2025-01-01T00:41:00.000Z', kind: 'maintenance', node_id: 'n1', author: 'system:maintenance', body: { event: 'ended', window_id: 'mw-1', early: false } }); // a late duplicate changes nothing
    att('n1', '2025-01-01T00:50:00.000Z'); // after the early end: delivered again
    await hooks.deliverDue();
    const kinds = r.got.map((g) => g.headers['x-vaultmesh-event']);
    expect(kinds).toEqual(['attention', 'maintenance', 'attention']);
    const summaries = r.got.filter((g) => g.headers['x-vaultmesh-event'] === 'maintenance').map((g) => JSON.parse(g.body));
    expect(summaries).toHaveLength(1);
    expect(summaries[0].envelope.body).toEqual({ event: 'ended', window_id: 'mw-1', early: true });
    expect(summaries[0].maintenance).toMatchObject({ window_id: 'mw-1', ended_early: true, held: { total: 3, by_kind: { attention: 2, incident: 1 }, by_node: { n1: 3 } } });
    expect(hooks.status()).toMatchObject({ held: 3, delivered: 3 });
  });
});
