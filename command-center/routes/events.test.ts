import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Envelope } from '../../protocol/envelope.js';
import { startCenter, type RunningCenter } from '../center.js';
import { resolveCenterConfig } from '../config.js';

const quiet = { info: () => {}, warn: () => {}, error: () => {} };
const dirs: string[] = [];
const centers: RunningCenter[] = [];

afterEach(async () => {
  for (const c of centers.splice(0)) await c.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function start(opts: { dir?: string; window?: number; now?: () => Date } = {}) {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'vm-events-'));
  if (!opts.dir) dirs.push(dir);
  const config = resolveCenterConfig({ port: 0, logDir: join(dir, 'logs'), stateDir: join(dir, 'state'), fsync: 'off', eventsWindow: opts.window ?? 500 }, {});
  const center = await startCenter(config, { log: quiet, ...(opts.now ? { now: opts.now } : {}) });
  centers.push(center);
  const token = readFileSync(center.adminTokenFile, 'utf8').trim();
  const api = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(center.url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, json: (await res.json()) as any };
  };
  return { dir, center, api };
}

const enrollDirect = (center: RunningCenter, nodeId: string) =>
  center.services.submit({
    kind: 'enrollment',
    node_id: nodeId,
    author: 'test',
    body: { action: 'request', hostname: nodeId, os_profile: 'ubuntu', public_key: '00'.repeat(32), key_id: 'k', agent_version: '1.0.0', facts: {}, auto_approved: true },
  });

describe('POST /api/events', () => {
  it('journals a note with the authenticated author and answers 201', async () => {
    const { api, dir } = await start();
    const r = await api('POST', '/api/events', { kind: 'note', body: { text: 'hello' } });
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({ duplicate: false, envelope: { v: 1, kind: 'note', author: 'admin', body: { text: 'hello' } } });
    const line = readFileSync(join(dir, 'logs', 'events.jsonl'), 'utf8').trim().split('\n').pop()!;
    expect(JSON.parse(line)).toEqual(r.json.envelope);
  });

  it.each([
    ['reserved kind heartbeat', { kind: 'heartbeat', node_id: 'n1', body: {} }, 'UNKNOWN_KIND'],
    ['reserved kind attention', { kind: 'attention', node_id: 'n1', body: { status: 'ok' } }, 'UNKNOWN_KIND'],
    ['reserved kind enrollment', { kind: 'enrollment', node_id: 'n1', body: { action: 'approve' } }, 'UNKNOWN_KIND'],
    ['bad incident', { kind: 'incident', body: { title: 't', severity: 'urgent' } }, 'VALIDATION_ERROR'],
    ['body and payload', { kind: 'note', body: { text: 'a' }, payload: { text: 'b' } }, 'VALIDATION_ERROR'],
    ['unknown top-level field', { kind: 'note', body: { text: 'a' }, seq: 5 }, 'VALIDATION_ERROR'],
    ['bad node id', { kind: 'note', node_id: '../x', body: { text: 'a' } }, 'VALIDATION_ERROR'],
    ['missing body', { kind: 'note' }, 'VALIDATION_ERROR'],
  ])('400 for %s', async (_name, body, code) => {
    const { api } = await start();
    const r = await api('POST', '/api/events', body);
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe(code);
  });

  it('records a claimed author (body author or X-VM-Author) only as on_behalf_of', async () => {
    const { api } = await start();
    const v0 = await api('POST', '/api/events', { kind: 'note', node_id: 'n1', payload: { text: 'from v0' }, author: 'root' });
    expect(v0.status).toBe(201);
    expect(v0.json.envelope).toMatchObject({ author: 'admin', on_behalf_of: 'root', node_id: 'n1', body: { text: 'from v0' } });
    const hdr = await api('POST', '/api/events', { kind: 'note', body: { text: 'x', author: 'mallory' } }, { 'x-vm-author': 'ceo' });
    expect(hdr.json.envelope).toMatchObject({ author: 'admin', on_behalf_of: 'ceo', body: { text: 'x', author: 'mallory' } });
    expect((await api('POST', '/api/events', { kind: 'note', author: 'a\u0007b', body: { text: 'x' } })).status).toBe(400);
    expect((await api('POST', '/api/events', { kind: 'note', body: { text: 'x' } }, { 'x-vm-author': 'x'.repeat(257) })).status).toBe(400);
  });

  it('makes retries safe with Idempotency-Key (or body id)', async () => {
    const { api } = await start();
    const first = await api('POST', '/api/events', { kind: 'incident', body: { title: 'db down', severity: 'high' } }, { 'idempotency-key': 'inc-42' });
    expect(first.status).toBe(201);
    expect(first.json.id).toBe('inc-42');
    const again = await api('POST', '/api/events', { kind: 'incident', body: { title: 'db down', severity: 'high' } }, { 'idempotency-key': 'inc-42' });
    expect(again.status).toBe(200);
    expect(again.json).toEqual({ duplicate: true, id: 'inc-42', seq: first.json.seq });
    // Resolving twice with the same key: the retry is a duplicate, not a 404 for an already-resolved incident.
    const res1 = await api('POST', '/api/events', { kind: 'resolve', id: 'res-42', body: { incident_id: 'inc-42' } });
    const res2 = await api('POST', '/api/events', { kind: 'resolve', id: 'res-42', body: { incident_id: 'inc-42' } });
    expect([res1.status, res2.status]).toEqual([201, 200]);
    const conflict = await api('POST', '/api/events', { kind: 'note', id: 'a1', body: { text: 'x' } }, { 'idempotency-key': 'a2' });
    expect(conflict.status).toBe(400);
    // Concurrent retries of one key store one envelope.
    const burst = await Promise.all(Array.from({ length: 5 }, () => api('POST', '/api/events', { kind: 'note', body: { text: 'once' } }, { 'idempotency-key': 'burst-1' })));
    expect(burst.filter((r) => r.status === 201)).toHaveLength(1);
    const page = await api('GET', '/api/events?kind=note');
    expect(page.json.items.filter((e: Envelope) => e.id === 'burst-1')).toHaveLength(1);
  });

  it('runs the incident lifecycle and tags; ack/resolve inherit the node', async () => {
    const { api, center } = await start();
    await enrollDirect(center, 'web-1');
    const inc = await api('POST', '/api/events', { kind: 'incident', node_id: 'web-1', body: { title: 'disk', severity: 'critical' } });
    const ack = await api('POST', '/api/events', { kind: 'ack', body: { incident_id: inc.json.id, text: 'mine' } });
    expect(ack.json.envelope.node_id).toBe('web-1');
    let open = await api('GET', '/api/incidents');
    expect(open.json.items).toMatchObject([{ id: inc.json.id, status: 'acknowledged', acks: [{ author: 'admin', text: 'mine' }] }]);
    expect((await api('POST', '/api/events', { kind: 'ack', node_id: 'other', body: { incident_id: inc.json.id } })).status).toBe(400);
    expect((await api('POST', '/api/events', { kind: 'resolve', body: { incident_id: 'nope' } })).status).toBe(404);
    expect((await api('POST', '/api/events', { kind: 'resolve', body: { incident_id: inc.json.id } })).status).toBe(201);
    open = await api('GET', '/api/incidents');
    expect(open.json).toMatchObject({ items: [], open: 0, resolved: 1 });

    expect((await api('POST', '/api/events', { kind: 'tag', node_id: 'ghost', body: { add: ['x'] } })).status).toBe(404);
    expect((await api('POST', '/api/events', { kind: 'tag', node_id: 'web-1', body: { add: ['env=prod', 'gpu'] } })).status).toBe(201);
    const node = await api('GET', '/api/nodes/web-1');
    expect(node.json.tags).toEqual(['env=prod', 'gpu']);
  });

  it('needs a token', async () => {
    const { center } = await start();
    const res = await fetch(`${center.url}/api/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"kind":"note","body":{"text":"x"}}' });
    expect(res.status).toBe(401);
  });
});

describe('GET /api/events', () => {
  it.each([
    ['since=abc', 'since'],
    ['since=-1', 'since'],
    ['limit=0', 'limit'],
    ['limit=1001', 'limit'],
    ['limit=1.5', 'limit'],
    ['kind=Note', 'kind'],
    ['node_id=a%20b', 'node_id'],
    ['sinse=1', 'sinse'],
  ])('400 for %s', async (query, path) => {
    const { api } = await start();
    const r = await api('GET', `/api/events?${query}`);
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ code: 'VALIDATION_ERROR', details: [{ path }] });
  });

  it('pages across the memory/journal boundary, before and after a restart, in seq order without gaps', async () => {
    const first = await start({ window: 5 });
    for (let i = 0; i < 30; i++) {
      await first.api('POST', '/api/events', { kind: i % 3 === 0 ? 'incident' : 'note', node_id: i % 2 ? 'a' : 'b', body: i % 3 === 0 ? { title: `i${i}`, severity: 'low' } : { text: `n${i}` } });
    }
    await first.center.services.submit({ kind: 'heartbeat', node_id: 'a', author: 'node', body: { x: 1 } }); // another journal

    const walk = async (api: typeof first.api, query: string, limit: number) => {
      const seen: Envelope[] = [];
      let since = '0';
      for (let guard = 0; guard < 100; guard++) {
        const r = await api('GET', `/api/events?since=${since}&limit=${limit}${query}`);
        expect(r.status).toBe(200);
        seen.push(...r.json.items);
        if (r.json.next === null) break;
        since = r.json.next;
      }
      return seen;
    };
    const all = await walk(first.api, '', 7);
    expect(all.map((e) => e.seq)).toEqual(Array.from({ length: 31 }, (_, i) => i + 1));
    const notesOfA = await walk(first.api, '&kind=note&node_id=a', 4);
    expect(notesOfA.every((e) => e.kind === 'note' && e.node_id === 'a')).toBe(true);
    expect(notesOfA).toHaveLength(all.filter((e) => e.kind === 'note' && e.node_id === 'a').length);

    // The recent page comes from memory; an old one from the journal: same shapes either way.
    const log = first.center.services.eventLog!;
    expect((await log.query({ since: { seq: 28 }, kinds: ['note', 'incident'], limit: 10 })).source).toBe('memory');
    expect((await log.query({ since: { seq: 3 }, kinds: ['note'], limit: 2 })).source).toBe('journal');

    await first.center.close();
    centers.splice(centers.indexOf(first.center), 1);
    const second = await start({ dir: first.dir, window: 5 });
    const after = await walk(second.api, '', 9);
    expect(after).toEqual(all);
  });

  it('accepts an RFC 3339 since, and returns next=null on a short page', async () => {
    let now = Date.parse('2025-01-01T00:00:00Z');
    const { api } = await start({ window: 2, now: () => new Date(now) });
    for (let i = 0; i < 6; i++) {
      now += 60_000;
      await api('POST', '/api/events', { kind: 'note', body: { text: `m${i}` } });
    }
    const r = await api('GET', '/api/events?kind=note&since=2025-01-01T00:03:00Z');
    expect(r.json.items.map((e: Envelope) => e.body.text)).toEqual(['m2', 'm3', 'm4', 'm5']);
    expect(r.json.next).toBeNull();
    const recent = await api('GET', '/api/events?kind=note&since=2025-01-01T00:05:30Z');
    expect(recent.json.items.map((e: Envelope) => e.body.text)).toEqual(['m5']);
  });
});

describe('GET /api/attention', () => {
  it('lists approved nodes needing attention, worst first, with reasons and since', async () => {
    let now = Date.parse('2025-01-01T00:00:00Z');
    const { api, center } = await start({ now: () => new Date(now) });
    for (const id of ['a', 'b', 'c']) await enrollDirect(center, id);
    const hb = (id: string, over: Record<string, unknown> = {}) =>
      center.services.submit({
        kind: 'heartbeat',
        node_id: id,
        author: `node:${id}`,
        body: { node_id: id, hostname: id, os_profile: 'ubuntu', cloudflare_ok: true, services_ok: true, vaultmesh_root: '/', timestamp: new Date(now).toISOString(), agent_version: '1.0.0', metrics: { load: [0, 0, 0], mem_used_bytes: 1, mem_total_bytes: 10, disk_used_bytes: 1, disk_total_bytes: 10, uptime_s: 1 }, ...over },
      });
    await hb('a');
    await hb('b', { cloudflare_ok: false });
    await hb('c');
    await api('POST', '/api/events', { kind: 'incident', node_id: 'c', body: { title: 'fire', severity: 'critical' } });
    await center.services.attention!.idle();
    const r = await api('GET', '/api/attention');
    expect(r.status).toBe(200);
    expect(r.json.counts).toEqual({ ok: 1, attn: 1, crit: 1 });
    expect(r.json.items).toMatchObject([
      { node_id: 'c', status: 'crit', reasons: [{ code: 'OPEN_INCIDENT' }], since: expect.any(String) },
      { node_id: 'b', status: 'attn', reasons: [{ code: 'CLOUDFLARE_DOWN' }] },
    ]);
    expect((await api('GET', '/api/attention?status=crit')).json.items.map((i: any) => i.node_id)).toEqual(['c']);
    expect((await api('GET', '/api/attention?status=bad')).status).toBe(400);
    expect(r.json.items.every((i: any) => i.outage === null)).toBe(true);

    // Time passes without heartbeats: the sweep journals staleness, visible in the history.
    now += 61_000;
    center.services.attention!.sweep();
    await center.services.attention!.idle();
    const att = await api('GET', '/api/events?kind=attention&node_id=a');
    expect(att.json.items.map((e: Envelope) => [e.body.previous, e.body.status])).toEqual([['ok', 'attn']]);
    expect((await api('GET', '/api/nodes')).json.find((n: any) => n.node_id === 'a').status).toBe('attn');

    // Declared offline (as the leader's outage monitor journals it): the attention item names the outage.
    const last = center.services.state.nodes.get('a')!;
    const { envelope: offline } = await center.services.submit({
      id: `offline:a:${last.last_heartbeat_seq}`,
      kind: 'offline',
      node_id: 'a',
      author: 'system:outages',
      body: { last_heartbeat_seq: last.last_heartbeat_seq!, last_heartbeat_ts: last.last_seen!, silent_s: 61, threshold_s: 60, due_at: last.last_seen!, declared_late: false },
    });
    const a = (await api('GET', '/api/attention')).json.items.find((i: any) => i.node_id === 'a');
    expect(a.outage).toEqual({ offline_seq: offline.seq, offline_at: offline.ts, last_heartbeat_seq: last.last_heartbeat_seq, last_heartbeat_at: last.last_seen, returned_at: null });
  });
});
