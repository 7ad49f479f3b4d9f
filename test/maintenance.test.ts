/**
 * Maintenance windows end to end: the API and the CLI against a real center, alarms silenced and webhooks held for
 * the covered node only, exactly one summary webhook at the end, and a restart mid-window (from the state snapshot and
 * from the whole log) that keeps silencing and still ends the window on time.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { enrolledNode, heartbeatBody, startTestCenter, tempDir, type TestCenter } from './helpers.js';
import { CLI_BIN, assertBuilt, runNode } from './process-helpers.js';

async function receiver() {
  const got: Array<{ headers: IncomingMessage['headers']; body: any }> = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      got.push({ headers: req.headers, body: JSON.parse(body) });
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got, close: () => new Promise<void>((r) => server.close(() => r())) };
}

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('maintenance windows through the API and the CLI', () => {
  const t = tempDir('vm-maint-');
  let c: TestCenter;
  let hook: Awaited<ReturnType<typeof receiver>>;
  beforeAll(async () => {
    assertBuilt();
    hook = await receiver();
    // 1 s heartbeats: a silent node is ATTN after 2 s and CRIT after 5 s; the monitor sweeps every second.
    c = await startTestCenter(t.dir, { heartbeatSecs: 1, attentionCheckSecs: 1, webhookUrls: hook.url });
    for (const id of ['web-01', 'web-02']) {
      const n = await enrolledNode(c, id);
      await n.send('POST', '/api/agent/heartbeat', heartbeatBody(id));
    }
  });
  afterAll(async () => {
    await c?.close();
    await hook?.close();
    t.cleanup();
  });
  const cli = (args: string[]) => runNode(CLI_BIN, [...args, '--cc-url', c.url, '--state-dir', join(t.dir, 'state')]);

  it('silences the covered node, holds its webhooks, and sends one summary when it is ended', async () => {
    const started = await cli(['maintenance', 'start', '--node', 'web-01', '--reason', 'kernel upgrade', '--for', '2h', '--json']);
    expect(started.code, started.stderr).toBe(0);
    const w = JSON.parse(started.stdout);
    expect(w).toMatchObject({ target: { node_id: 'web-01' }, reason: 'kernel upgrade', scans: 'defer', state: 'active', created_by: 'admin', nodes: ['web-01'], held: { total: 0 } });
    expect(Date.parse(w.ends_at) - Date.parse(w.starts_at)).toBe(2 * 3600_000);

    // Both nodes go silent: web-02 raises STALE (journaled and sent), web-01 stays OK with its reasons silenced.
    await until('web-02 CRIT', async () => (await c.api('GET', '/api/attention?status=crit')).json.items.find((i: { node_id: string }) => i.node_id === 'web-02'));
    const detail = (await c.api('GET', '/api/nodes/web-01')).json;
    expect(detail.attention.status).toBe('ok');
    expect(detail.attention.silenced.map((r: { code: string }) => r.code)).toContain('STALE');
    const listedNodes = (await c.api('GET', '/api/nodes')).json;
    expect(listedNodes.map((n: { node_id: string; in_maintenance: boolean }) => [n.node_id, n.in_maintenance])).toEqual([
      ['web-01', true],
      ['web-02', false],
    ]);
    const inc = await c.api('POST', '/api/events', { kind: 'incident', node_id: 'web-01', body: { title: 'reboot loop?', severity: 'high' } });
    expect(inc.status).toBe(201);
    await until('web-02 webhook', () => hook.got.find((g) => g.body.envelope.node_id === 'web-02'));
    expect(hook.got.filter((g) => g.body.envelope.node_id === 'web-01')).toEqual([]);
    const attentionEvents = (await c.api('GET', '/api/events?kind=attention&node_id=web-01')).json.items;
    // The open high incident is not silenced (ATTN), staleness is: nothing CRIT was journaled for web-01.
    expect(attentionEvents.map((e: { body: { status: string } }) => e.body.status)).not.toContain('crit');

    const ext = await cli(['maintenance', 'extend', w.id, '--for', '3h', '--json']);
    expect(ext.code, ext.stderr).toBe(0);
    const extended = JSON.parse(ext.stdout);
    expect(extended.extended).toBe(1);
    expect(Date.parse(extended.ends_at) - Date.now()).toBeGreaterThan(2.9 * 3600_000);
    const listed = await cli(['maintenance', 'list']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`${w.id}\\s+node web-01\\s+active`));

    const ended = await cli(['maintenance', 'end', w.id, '--json']);
    expect(ended.code, ended.stderr).toBe(0);
    const e = JSON.parse(ended.stdout);
    expect(e).toMatchObject({ id: w.id, state: 'ended', ended_early: true, ended_by: 'admin' });
    expect(e.held.total).toBeGreaterThanOrEqual(2); // the incident and web-01's attention transition(s)
    expect(e.held.by_kind.incident).toBe(1);

    const summary = await until('the summary webhook', () => hook.got.find((g) => g.headers['x-vaultmesh-event'] === 'maintenance'));
    expect(summary.body.maintenance).toMatchObject({ window_id: w.id, ended_early: true, held: e.held });
    // The silence is over: web-01's staleness is alarmed and delivered again.
    await until('web-01 CRIT delivered', () => hook.got.find((g) => g.body.envelope.node_id === 'web-01' && g.body.envelope.kind === 'attention' && g.body.envelope.body.status === 'crit'));
    expect(hook.got.filter((g) => g.headers['x-vaultmesh-event'] === 'maintenance')).toHaveLength(1);

    const again = await cli(['maintenance', 'end', w.id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/MAINTENANCE_ENDED|has ended/);
    const recent = (await c.api('GET', '/api/maintenance?recent=1')).json;
    expect(recent.items.map((x: { id: string; state: string }) => [x.id, x.state])).toEqual([[w.id, 'ended']]);
    expect((await c.api('GET', '/api/maintenance')).json.items).toEqual([]);
  });

  it('a profile or tag window covers every matching node; --until and a later --start are honoured', async () => {
    await c.api('POST', '/api/events', { kind: 'tag', node_id: 'web-02', body: { add: ['rack=b12'] } });
    const soon = new Date(Date.now() + 3600_000).toISOString();
    const later = new Date(Date.now() + 7200_000).toISOString();
    const r = await cli(['maintenance', 'start', '--tag', 'rack=b12', '--reason', 'power work', '--start', soon, '--until', later, '--scans', 'skip', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ target: { tag: 'rack=b12' }, state: 'scheduled', scans: 'skip', nodes: ['web-02'], ends_at: later });
    const p = await c.api('POST', '/api/maintenance', { os_profile: 'debian', reason: 'patch tuesday', for_secs: 600 }, { 'idempotency-key': 'patch-1' });
    expect(p.status).toBe(201);
    // A retry with the same key answers the same window (200, duplicate) and journals nothing.
    // Counted by kind, not by the global seq: the center's own monitors (attention, outages) journal meanwhile.
    const windowSteps = async () => (await c.api('GET', '/api/events?kind=maintenance&limit=500')).json.items.length as number;
    const stepsBefore = await windowSteps();
    const retry = await c.api('POST', '/api/maintenance', { os_profile: 'debian', reason: 'patch tuesday', for_secs: 600 }, { 'idempotency-key': 'patch-1' });
    expect([retry.status, retry.json.id, retry.json.duplicate]).toEqual([200, p.json.id, true]);
    expect(await windowSteps()).toBe(stepsBefore);
    const bothKeys = await cli(['maintenance', 'start', '--profile', 'debian', '--reason', 'again', '--for', '10m', '--idempotency-key', 'patch-1', '--json']);
    expect(bothKeys.code, bothKeys.stderr).toBe(0);
    expect(JSON.parse(bothKeys.stdout)).toMatchObject({ id: p.json.id, duplicate: true }); // the same author (admin), the same key

    expect(p.json.nodes.sort()).toEqual(['web-01', 'web-02']);
    const only = (await c.api('GET', '/api/maintenance?node_id=web-01')).json.items.map((x: { id: string }) => x.id);
    expect(only).toEqual([p.json.id]);
    expect((await c.api('POST', `/api/maintenance/${p.json.id}/end`)).status).toBe(200);
    const late = await c.api('POST', `/api/maintenance/${p.json.id}/extend`, { for_secs: 600 });
    expect([late.status, late.json.error.code]).toEqual([409, 'MAINTENANCE_ENDED']);
  });

  it('answers bad input with 4xx codes, and the CLI with usage errors', async () => {
    const cases: Array<[string, string, unknown, number, string]> = [
      ['POST', '/api/maintenance', { node_id: 'web-01', for_secs: 600 }, 400, 'VALIDATION_ERROR'],
      ['POST', '/api/maintenance', { node_id: 'web-01', tag: 'x', reason: 'r', for_secs: 600 }, 400, 'VALIDATION_ERROR'],
      ['POST', '/api/maintenance', { node_id: 'web-01', reason: 'r' }, 400, 'VALIDATION_ERROR'],
      ['POST', '/api/maintenance', { node_id: 'web-01', reason: 'r', until: '2001-01-01T00:00:00Z' }, 400, 'VALIDATION_ERROR'],
      ['POST', '/api/maintenance', { node_id: 'web-01', reason: 'r', for_secs: 600, scans: 'maybe' }, 400, 'VALIDATION_ERROR'],
      ['POST', '/api/maintenance', { node_id: 'nope', reason: 'r', for_secs: 600 }, 404, 'NOT_FOUND'],
      ['POST', '/api/maintenance', '[1', 400, 'MALFORMED_JSON'],
      ['POST', '/api/maintenance/mw-000000000000/end', undefined, 404, 'MAINTENANCE_NOT_FOUND'],
      ['POST', '/api/maintenance/bad%20id/end', undefined, 400, 'VALIDATION_ERROR'],
      ['GET', '/api/maintenance?recent=maybe', undefined, 400, 'VALIDATION_ERROR'],
      ['GET', '/api/maintenance?what=1', undefined, 400, 'VALIDATION_ERROR'],
      ['GET', '/api/maintenance/mw-000000000000', undefined, 404, 'MAINTENANCE_NOT_FOUND'],
      ['POST', '/api/maintenance/mw-000000000000/extend', { for_secs: 600 }, 404, 'MAINTENANCE_NOT_FOUND'],
      ['POST', '/api/maintenance/mw-000000000000/extend', { for_secs: 600, until: '2030-01-01T00:00:00Z' }, 400, 'VALIDATION_ERROR'],
      ['POST', '/api/maintenance/mw-000000000000/end', { now: true }, 400, 'VALIDATION_ERROR'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const r = await c.api(method, path, body);
      expect([path, r.status, r.json?.error?.code]).toEqual([path, status, code]);
    }
    const badKey = await c.api('POST', '/api/maintenance', { node_id: 'web-01', reason: 'r', for_secs: 600 }, { 'idempotency-key': 'no spaces allowed' });
    expect([badKey.status, badKey.json.error.code]).toEqual([400, 'VALIDATION_ERROR']);
    // A token without events:write may read windows but not start one.
    const tok = (await c.api('POST', '/api/tokens', { name: 'reader', scopes: ['nodes:read'] })).json.token;
    const denied = await c.api('POST', '/api/maintenance', { node_id: 'web-01', reason: 'r', for_secs: 600 }, { authorization: `Bearer ${tok}` });
    expect(denied.status).toBe(403);
    expect((await c.api('GET', '/api/maintenance', undefined, { authorization: `Bearer ${tok}` })).status).toBe(200);

    for (const args of [
      ['maintenance', 'start', '--reason', 'x', '--for', '1h'],
      ['maintenance', 'start', '--node', 'web-01', '--for', '1h'],
      ['maintenance', 'start', '--node', 'web-01', '--reason', 'x'],
      ['maintenance', 'start', '--node', 'web-01', '--reason', 'x', '--for', 'soon'],
      ['maintenance', 'start', '--node', 'web-01', '--reason', 'x', '--for', '1h', '--scans', 'never'],
      ['maintenance', 'end'],
      ['maintenance', 'extend', 'mw-1'],
      ['maintenance', 'extend', 'mw-1', '--for', '1h', '--until', '2030-01-01T00:00:00Z'],
      ['maintenance', 'pause'],
    ]) {
      const r = await cli(args);
      expect([args.join(' '), r.code]).toEqual([args.join(' '), 2]);
    }
  });
});

describe('maintenance windows across a restart', () => {
  const t = tempDir('vm-maint-restart-');
  let c: TestCenter | undefined;
  afterEach(async () => {
    await c?.close();
    c = undefined;
  });
  afterAll(() => t.cleanup());

  it('keeps silencing after a restart (snapshot and full replay) and ends on time, once', async () => {
    let nowMs = Date.now();
    const now = () => new Date(nowMs);
    c = await startTestCenter(t.dir, { heartbeatSecs: 60 }, { now });
    const n = await enrolledNode(c, 'db-01');
    await n.send('POST', '/api/agent/heartbeat', heartbeatBody('db-01'));
    const w = (await c.api('POST', '/api/maintenance', { node_id: 'db-01', reason: 'migration', until: new Date(nowMs + 3600_000).toISOString() })).json;
    expect(w.state).toBe('active');
    await c.close();

    nowMs += 30 * 60_000; // half an hour later, 30 missed heartbeats: CRIT without the window
    for (const snapshotOff of [false, true]) {
      c = await startTestCenter(t.dir, { heartbeatSecs: 60, snapshotOff }, { now });
      expect(c.snapshot.used).toBe(!snapshotOff);
      const got = (await c.api('GET', `/api/maintenance/${w.id}`)).json;
      expect(got).toMatchObject({ id: w.id, state: 'active', reason: 'migration', nodes: ['db-01'] });
      const d = (await c.api('GET', '/api/nodes/db-01')).json;
      expect(d.attention).toMatchObject({ status: 'ok' });
      expect((await c.api('GET', '/api/attention')).json.items).toEqual([]);
      await c.close();
    }

    c = await startTestCenter(t.dir, { heartbeatSecs: 60 }, { now });
    nowMs += 31 * 60_000; // past the end: the leader's timer journals the end within a second
    const ended = await until('the timer end', async () => {
      const r = (await c!.api('GET', `/api/maintenance/${w.id}`)).json;
      return r.ended_by ? r : undefined;
    });
    expect(ended).toMatchObject({ state: 'ended', ended_by: 'system:maintenance', ended_early: false, ended_at: w.ends_at });
    await new Promise((r) => setTimeout(r, 1500)); // more timer ticks: still one end
    const ends = (await c.api('GET', '/api/events?kind=maintenance')).json.items.filter((e: { body: { event: string } }) => e.body.event === 'ended');
    expect(ends).toHaveLength(1);
    expect((await c.api('GET', '/api/nodes/db-01')).json.attention.status).toBe('crit');
  });
});
