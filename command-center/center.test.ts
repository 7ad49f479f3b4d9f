import { describe, expect, it } from 'vitest';
import { composeTestCenter, manualTimers, enrolledNode, heartbeatBody, openSse, startTestCenter, tempDir, testNode, type TestCenter, cleanupAfterEach } from '../test/helpers.js';
import { createApp } from './http/app.js';
import { signRequest } from '../protocol/request-signing.js';
import { request } from 'undici';
import { centerStores, storedText } from '../test/center-stores.js';

const onCleanup = cleanupAfterEach();

async function center(overrides = {}, opts = {}): Promise<TestCenter> {
  const t = tempDir();
  const c = await startTestCenter(t.dir, overrides, opts);
  onCleanup(t.cleanup);
  onCleanup(() => c.close());
  return c;
}

/** Waits for a condition an event will make true (bounded: 5 s), instead of sleeping a guessed time. */
async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
}

const enrollBody = (node: { id: string; key: { publicKeyHex: string } }, token: string) => ({
  token,
  node_id: node.id,
  hostname: `${node.id}.example`,
  os_profile: 'debian',
  public_key: node.key.publicKeyHex,
  agent_version: '0.1.0',
  facts: { arch: 'x64' },
});

describe('public surface', () => {
  it('only /healthz answers without an identity', async () => {
    const c = await center();
    expect((await request(`${c.url}/healthz`)).statusCode).toBe(200);
    for (const path of ['/api/nodes', '/api/nodes/x', '/events', '/metrics', '/api/join-tokens']) {
      const res = await request(c.url + path);
      expect(res.statusCode, path).toBe(401);
      expect(await res.body.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    }
    const wrong = await request(`${c.url}/api/nodes`, { headers: { authorization: 'Bearer vmadmin_wrong' } });
    expect(wrong.statusCode).toBe(401);
    await wrong.body.dump();
  });

  it('answers unknown routes, oversized bodies and malformed JSON with JSON 4xx errors', async () => {
    const c = await center({ maxBodyBytes: 2048 });
    expect((await c.api('GET', '/api/nope')).status).toBe(404);
    const big = await c.api('POST', '/api/join-tokens', JSON.stringify({ label: 'x'.repeat(5000) }));
    expect(big.status).toBe(413);
    expect(big.json.error.code).toBe('PAYLOAD_TOO_LARGE');
    const bad = await c.api('POST', '/api/join-tokens', '{"uses": 1,');
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('MALFORMED_JSON');
    const type = await c.api('POST', '/api/join-tokens', '{}', { 'content-type': 'text/plain' });
    expect(type.status).toBe(415);
    const extra = await c.api('POST', '/api/join-tokens', { uses: 1, admin: true });
    expect(extra.status).toBe(400);
    expect(extra.json.error.details[0].message).toMatch(/admin/);
  });
});

describe.each(centerStores('center: enrollment'))('enrollment (%s store)', (_store, storeOverrides) => {
  it('happy path: token → pending → operator approves → heartbeats accepted; the token is stored only as a hash', async () => {
    const c = await center(await storeOverrides());
    const tok = await c.api('POST', '/api/join-tokens', { uses: 2, ttl_secs: 600 });
    expect(tok.status).toBe(201);
    const node = testNode(c, 'web-01');
    const r = await node.send('POST', '/api/agent/enroll', enrollBody(node, tok.json.token));
    expect(r.status).toBe(202);
    expect(r.json.status).toBe('pending');
    // a retry of the same enrollment spends no further token use
    expect((await node.send('POST', '/api/agent/enroll', enrollBody(node, tok.json.token))).json.status).toBe('pending');
    const hbPending = await node.send('POST', '/api/agent/heartbeat', heartbeatBody('web-01'));
    expect(hbPending.status).toBe(403);
    expect(hbPending.json.error.code).toBe('NODE_PENDING');
    expect((await c.api('GET', '/api/nodes')).json[0]).toMatchObject({ node_id: 'web-01', status: 'pending' });

    expect((await c.api('POST', '/api/nodes/web-01/approve')).json.enrollment).toBe('approved');
    const hb = await node.send('POST', '/api/agent/heartbeat', heartbeatBody('web-01'));
    expect(hb.status).toBe(200);
    const nodes = (await c.api('GET', '/api/nodes')).json;
    expect(nodes[0]).toMatchObject({ node_id: 'web-01', hostname: 'web-01.example', os_profile: 'debian', status: 'ok' });
    expect(typeof nodes[0].last_seen).toBe('string');
    const tokens = (await c.api('GET', '/api/join-tokens')).json;
    expect(tokens[0]).toMatchObject({ used: 1, uses: 2, state: 'active' });
    const stored = await storedText(c.config);
    expect(stored).toContain('"kind":"enrollment"');
    expect(stored).not.toContain(tok.json.token);
  });

  it.each([
    ['bad token', async (c: TestCenter) => ({ token: 'vmjoin_' + 'x'.repeat(40) }), 'BAD_JOIN_TOKEN'],
    ['expired token', async (c: TestCenter) => ({ token: (await c.api('POST', '/api/join-tokens', { ttl_secs: 60 })).json.token, later: true }), 'JOIN_TOKEN_EXPIRED'],
    ['used-up token', async (c: TestCenter) => {
      const token = (await c.api('POST', '/api/join-tokens', { uses: 1 })).json.token;
      const first = testNode(c, 'first');
      await first.send('POST', '/api/agent/enroll', enrollBody(first, token));
      return { token };
    }, 'JOIN_TOKEN_USED_UP'],
    ['revoked token', async (c: TestCenter) => {
      const t = (await c.api('POST', '/api/join-tokens', {})).json;
      await c.api('DELETE', `/api/join-tokens/${t.token_id}`);
      return { token: t.token };
    }, 'JOIN_TOKEN_REVOKED'],
  ])('rejects a %s', async (_name, setup, code) => {
    let offset = 0;
    const c = await center(await storeOverrides(), { now: () => new Date(Date.now() + offset) });
    const { token, later } = (await setup(c)) as { token: string; later?: boolean };
    if (later) offset = 120_000;
    const node = testNode(c, 'n-x');
    const r = await node.send('POST', '/api/agent/enroll', enrollBody(node, token), { now: () => new Date(Date.now() + offset) });
    expect(r.status).toBe(401);
    expect(r.json.error.code).toBe(code);
  });

  it('rejects an enrollment not signed by the key it enrolls, and another key for a known node', async () => {
    const c = await center(await storeOverrides());
    const token = (await c.api('POST', '/api/join-tokens', { uses: 3 })).json.token;
    const node = testNode(c, 'n1');
    const other = testNode(c, 'n1');
    const forged = await other.send('POST', '/api/agent/enroll', enrollBody(node, token));
    expect(forged.status).toBe(401);
    expect(forged.json.error.code).toBe('BAD_SIGNATURE');
    expect((await node.send('POST', '/api/agent/enroll', enrollBody(node, token))).status).toBe(202);
    const takeover = await other.send('POST', '/api/agent/enroll', enrollBody(other, token));
    expect(takeover.status).toBe(409);
    expect(takeover.json.error.code).toBe('NODE_EXISTS');
  });

  it('rejected and revoked nodes are refused with 403', async () => {
    const c = await center(await storeOverrides());
    const a = await enrolledNode(c, 'a', { approve: false });
    await c.api('POST', '/api/nodes/a/reject');
    expect((await a.send('POST', '/api/agent/heartbeat', heartbeatBody('a'))).json.error.code).toBe('NODE_REJECTED');
    const b = await enrolledNode(c, 'b');
    expect((await b.send('POST', '/api/agent/heartbeat', heartbeatBody('b'))).status).toBe(200);
    await c.api('POST', '/api/nodes/b/revoke');
    const r = await b.send('POST', '/api/agent/heartbeat', heartbeatBody('b'));
    expect(r.status).toBe(403);
    expect(r.json.error.code).toBe('NODE_REVOKED');
  });
});

describe.each(centerStores('center: signed agent requests'))('signed agent requests (%s store)', (_store, storeOverrides) => {
  it('rejects unsigned, unknown, bad-signature, replayed and clock-skewed requests, and a node speaking for another', async () => {
    const c = await center(await storeOverrides());
    const n = await enrolledNode(c, 'n1');
    await enrolledNode(c, 'n2');
    const body = JSON.stringify(heartbeatBody('n1'));
    const post = async (headers: Record<string, string>, b = body) => {
      const res = await request(`${c.url}/api/agent/heartbeat`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: b });
      return { status: res.statusCode, code: ((await res.body.json()) as any).error?.code };
    };
    expect(await post({})).toEqual({ status: 401, code: 'MISSING_SIGNATURE' });
    const stranger = testNode(c, 'ghost');
    expect((await stranger.send('POST', '/api/agent/heartbeat', heartbeatBody('ghost'))).json.error.code).toBe('UNKNOWN_NODE');

    const signed = signRequest({ method: 'POST', path: '/api/agent/heartbeat', nodeId: 'n1', body }, n.key);
    expect((await post(signed)).status).toBe(200);
    expect(await post(signed)).toEqual({ status: 401, code: 'REPLAYED_REQUEST' });

    const tampered = signRequest({ method: 'POST', path: '/api/agent/heartbeat', nodeId: 'n1', body }, n.key);
    // A tampered request gets the answer an unknown node gets: forged requests must not reveal which ids exist.
    expect(await post(tampered, body.replace('"services_ok":true', '"services_ok":false'))).toEqual({ status: 401, code: 'UNKNOWN_NODE' });

    const skewed = signRequest({ method: 'POST', path: '/api/agent/heartbeat', nodeId: 'n1', body }, n.key, { now: () => new Date(Date.now() - 6 * 60_000) });
    expect(await post(skewed)).toEqual({ status: 401, code: 'CLOCK_SKEW' });

    const wrongNode = await n.send('POST', '/api/agent/heartbeat', heartbeatBody('n2'));
    expect(wrongNode.status).toBe(403);
    expect(wrongNode.json.error.code).toBe('NODE_MISMATCH');

    const invalid = await n.send('POST', '/api/agent/heartbeat', { ...heartbeatBody('n1'), metrics: { load: 'high' } });
    expect(invalid.status).toBe(400);
    expect(invalid.json.error.code).toBe('VALIDATION_ERROR');
    const detail = (await c.api('GET', '/api/nodes/n1')).json;
    expect(detail.heartbeat_count).toBe(1);
  });

  it('stores a retried heartbeat (same id) once', async () => {
    const c = await center(await storeOverrides());
    const n = await enrolledNode(c, 'n1');
    const hb = heartbeatBody('n1', { id: 'hb-n1-0001' });
    const a = await n.send('POST', '/api/agent/heartbeat', hb);
    const b = await n.send('POST', '/api/agent/heartbeat', hb);
    expect(a.json.duplicate).toBe(false);
    expect(b.json).toMatchObject({ duplicate: true, seq: a.json.seq });
    expect((await c.api('GET', '/api/nodes/n1')).json.heartbeat_count).toBe(1);
  });
});

describe.each(centerStores('center: SSE and restart'))('SSE and restart (%s store)', (_store, storeOverrides) => {
  it('a heartbeat reaches a real SSE client as event "heartbeat" with id = seq; Last-Event-ID resumes', async () => {
    const c = await center(await storeOverrides());
    const n = await enrolledNode(c, 'n1');
    const auth = { authorization: `Bearer ${c.adminToken}` };
    const sse = await openSse(`${c.url}/events`, auth);
    expect(sse.status).toBe(200);
    const r = await n.send('POST', '/api/agent/heartbeat', heartbeatBody('n1'));
    const ev = await sse.waitFor((e) => e.event === 'heartbeat');
    expect(ev.id).toBe(String(r.json.seq));
    expect(JSON.parse(ev.data)).toMatchObject({ kind: 'heartbeat', node_id: 'n1', seq: r.json.seq });
    await sse.close();

    const seqs: number[] = [];
    for (let i = 0; i < 3; i++) seqs.push((await n.send('POST', '/api/agent/heartbeat', heartbeatBody('n1'))).json.seq);
    const resumed = await openSse(`${c.url}/events`, { ...auth, 'last-event-id': String(r.json.seq) });
    await resumed.waitFor((e) => e.id === String(seqs[2]));
    expect(resumed.events.filter((e) => e.event === 'heartbeat').map((e) => Number(e.id))).toEqual(seqs);
    await resumed.close();
  });

  it('says event: reset when the client is too far behind, and sends keepalive comments', async () => {
    const c = await center({ ...(await storeOverrides()), sseRetain: 16 }, { keepaliveMs: 100 });
    const n = await enrolledNode(c, 'n1');
    for (let i = 0; i < 20; i++) await n.send('POST', '/api/agent/heartbeat', heartbeatBody('n1'));
    const sse = await openSse(`${c.url}/events`, { authorization: `Bearer ${c.adminToken}`, 'last-event-id': '1' });
    await sse.waitFor((e) => e.event === 'reset');
    await until(() => sse.comments.includes('keepalive'));
    expect(sse.comments).toContain('keepalive');
    await sse.close();
  });

  it('drops a client that stops reading instead of buffering without bound', async () => {
    const c = await center({ ...(await storeOverrides()), sseMaxQueue: 16 });
    const n = await enrolledNode(c, 'n1');
    const net = await import('node:net');
    const sock = net.connect(c.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write(`GET /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${c.adminToken}\r\n\r\n`);
    sock.pause(); // never read
    await until(() => c.services.bus.subscribers === 1);
    expect(c.services.bus.subscribers).toBe(1);
    // Big envelopes (64 long unit names ≈ 9 KB each) so the kernel's socket buffers fill quickly.
    const services = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`unit-${i}-${'x'.repeat(110)}.service`, 'active']));
    let sent = 0;
    while (c.services.bus.subscribers > 0 && sent < 3000) {
      await Promise.all(Array.from({ length: 20 }, () => n.send('POST', '/api/agent/heartbeat', heartbeatBody('n1', { services }))));
      sent += 20;
    }
    expect(c.services.bus.subscribers).toBe(0);
    sock.destroy();
  });

  it('restart replays the journals into the same state', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const store = await storeOverrides();
    const c1 = await startTestCenter(t.dir, store);
    const n = await enrolledNode(c1, 'n1');
    await enrolledNode(c1, 'n2', { approve: false });
    for (let i = 0; i < 5; i++) await n.send('POST', '/api/agent/heartbeat', heartbeatBody('n1'));
    const before = (await c1.api('GET', '/api/nodes')).json;
    const detailBefore = (await c1.api('GET', '/api/nodes/n1')).json;
    await c1.close();
    const c2 = await startTestCenter(t.dir, store);
    onCleanup(() => c2.close());
    expect((await c2.api('GET', '/api/nodes')).json).toEqual(before);
    expect((await c2.api('GET', '/api/nodes/n1')).json).toEqual(detailBefore);
    expect(c2.services.state.lastSeq).toBe(c1.services.state.lastSeq);
    // the node's key survives too: it can keep talking
    expect((await testNode(c2, 'n1', n.key).send('POST', '/api/agent/heartbeat', heartbeatBody('n1'))).status).toBe(200);
  });

  it('composes in one pass: every service is there before the first request, optional features are null', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await composeTestCenter(t.dir, { ...(await storeOverrides()), orchestratorTickSecs: 0 });
    onCleanup(() => c.close());
    const s = c.services;
    expect(Object.entries(s).filter(([, v]) => v === undefined)).toEqual([]);
    expect([s.webhooks, s.orchestrator, s.authenticators.access]).toEqual([null, null, null]);
    // In-process, without a server: a posted note goes journal → fan-out → state, SSE ring, event log, recent ids.
    const app = createApp(s);
    const auth = { authorization: `Bearer ${c.adminToken}`, 'content-type': 'application/json' };
    const res = await app.request('/api/events', { method: 'POST', headers: auth, body: JSON.stringify({ id: 'note-1', kind: 'note', body: { text: 'hello' } }) });
    expect(res.status).toBe(201);
    const seq = s.state.lastSeq;
    expect(seq).toBeGreaterThan(0);
    expect(s.bus.recent(0, 10).at(-1)).toMatchObject({ id: 'note-1', seq });
    expect(s.seenEnvelopeId('admin', 'note-1')).toBe(seq);
    expect(await s.eventLog.query({ kinds: ['note'], limit: 10 })).toMatchObject({ items: [{ id: 'note-1', seq }], source: 'memory' });
  });

  it('runs every background job on the timers and clock it is given, and close() stops them all', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const manual = manualTimers(Date.parse('2026-03-01T12:00:00Z'));
    const c = await composeTestCenter(t.dir, { ...(await storeOverrides()), orchestratorTickSecs: 60, webhookUrls: 'http://127.0.0.1:9/hook' }, { now: () => new Date(manual.nowMs), timers: manual.timers });
    const s = c.services;
    // The singletons start once this center leads (at once with JSONL; after its first lock round with PostgreSQL).
    await until(() => s.leadership.isLeader);
    // command expiry, orchestrator, attention, outages, webhooks, maintenance window ends, rate-limit sweep, and with
    // PostgreSQL the leader lock's ping and heartbeat retention in the database and the followers' head adoption
    expect(manual.active).toBe(s.config.store === 'postgres' ? 10 : 7);
    const { createCommandPayload, signCommand } = await import('../protocol/command.js');
    const signed = signCommand(createCommandPayload({ id: 'cmd-t1', nodeId: 'n1', action: 'ping', args: {}, nonce: '0'.repeat(32), now: s.now(), ttlMs: 10_000, keyId: s.centerKey.keyId }), s.centerKey);
    await s.commands.enqueueSigned(signed, { author: 'test' });
    manual.advance(10_000);
    expect(s.commands.get('cmd-t1')!.status).toBe('queued'); // due, not overdue
    manual.advance(1_000); // the next sweep on the given timers sees it overdue by the given clock
    await until(() => s.commands.get('cmd-t1')!.status === 'expired');
    expect(s.commands.get('cmd-t1')!.status).toBe('expired');
    await c.close();
    expect([manual.active, manual.pending]).toEqual([0, 0]);
  });

  it('serves Prometheus metrics to an operator', async () => {
    const c = await center(await storeOverrides());
    const n = await enrolledNode(c, 'n1');
    await n.send('POST', '/api/agent/heartbeat', heartbeatBody('n1'));
    const res = await request(`${c.url}/metrics`, { headers: { authorization: `Bearer ${c.adminToken}` } });
    const text = await res.body.text();
    expect(res.statusCode).toBe(200);
    expect(text).toMatch(/vaultmesh_http_requests_total\{route="\/api\/agent\/heartbeat",method="POST",status="200"\} 1/);
    expect(text).toMatch(/vaultmesh_journal_fsync_seconds_count \d+/);
    expect(text).toMatch(/vaultmesh_nodes\{status="ok"\} 1/);
    for (const status of ['attn', 'crit', 'pending', 'offline', 'rejected', 'revoked']) expect(text).toContain(`vaultmesh_nodes{status="${status}"} 0`);
    // A monitoring token needs only metrics:read.
    const mon = await c.api('POST', '/api/tokens', { name: 'prometheus', scopes: ['metrics:read'] });
    expect(mon.status).toBe(201);
    const scraped = await request(`${c.url}/metrics`, { headers: { authorization: `Bearer ${mon.json.token}` } });
    expect(scraped.statusCode).toBe(200);
    await scraped.body.dump();
    const refused = await request(`${c.url}/api/nodes`, { headers: { authorization: `Bearer ${mon.json.token}` } });
    expect(refused.statusCode).toBe(403);
    await refused.body.dump();
    expect(text).toMatch(/vaultmesh_replay_duration_seconds/);
  });
});
