import { Hono } from 'hono';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { enrolledNode, heartbeatBody, openSse, startTestCenter, tempDir, testNode, type TestCenter, cleanupAfterEach, manualTimers } from '../../test/helpers.js';
import { renderError } from './http-errors.js';
import { addressKey, createAbuseLimits, createTokenBuckets, rateLimitHeaders } from './rate-limit.js';
import { longRequest } from './long-request.js';
import type { AppEnv } from '../services.js';

const onCleanup = cleanupAfterEach();

async function center(overrides: Record<string, unknown> = {}): Promise<TestCenter> {
  const t = tempDir();
  const c = await startTestCenter(t.dir, overrides);
  onCleanup(t.cleanup);
  onCleanup(() => c.close());
  return c;
}

describe('token buckets', () => {
  it('admits the burst, then refills at the rate; headers say limit, remaining, reset', () => {
    let t = 0;
    const b = createTokenBuckets({ perSec: 2, burst: 4 }, { now: () => t });
    const results = Array.from({ length: 5 }, () => b.take('k'));
    expect(results.map((r) => r.ok)).toEqual([true, true, true, true, false]);
    expect(rateLimitHeaders(results[3]!)).toEqual({ 'ratelimit-limit': '4', 'ratelimit-remaining': '0', 'ratelimit-reset': '2' });
    expect(results[4]!.retryAfterSecs).toBe(1);
    t = 500;
    expect(b.take('k').ok).toBe(true);
    expect(b.take('k').ok).toBe(false);
    expect(b.take('other').ok).toBe(true);
  });

  it('peek does not take; charge may go negative (charging after the fact)', () => {
    let t = 0;
    const b = createTokenBuckets({ perSec: 1, burst: 1 }, { now: () => t });
    expect(b.peek('k').ok).toBe(true);
    expect(b.peek('k').ok).toBe(true);
    b.charge('k');
    b.charge('k');
    expect(b.peek('k').ok).toBe(false);
    t = 1000;
    expect(b.peek('k').ok).toBe(false);
    t = 2000;
    expect(b.peek('k').ok).toBe(true);
  });

  it('stays bounded: refilled buckets are swept, the least recently used evicted past maxKeys', () => {
    let t = 0;
    const b = createTokenBuckets({ perSec: 10, burst: 10 }, { now: () => t, maxKeys: 100 });
    for (let i = 0; i < 1000; i++) b.take(`ip-${i}`);
    expect(b.size).toBe(100);
    t = 2000; // all full again
    b.sweep();
    expect(b.size).toBe(0);
    b.take('a');
    t = 2500;
    b.take('b');
    t = 3100; // a is full, b is not
    b.sweep();
    expect(b.size).toBe(1);
  });
});

describe('abuse limits in a running center', () => {
  it('per identity: 429 RATE_LIMITED with Retry-After and RateLimit-* headers', async () => {
    const c = await center({ rateLimitPerSec: 0.5, rateLimitBurst: 3 });
    const statuses: number[] = [];
    let last: Awaited<ReturnType<TestCenter['api']>> | undefined;
    for (let i = 0; i < 4; i++) {
      last = await c.api('GET', '/api/nodes');
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(last!.json.error.code).toBe('RATE_LIMITED');
    expect(last!.headers['retry-after']).toBe('2');
    expect(last!.headers['ratelimit-limit']).toBe('3');
    expect(last!.headers['ratelimit-remaining']).toBe('0');
    const ok = await c.api('GET', '/healthz');
    expect(ok.status).toBe(200);
  });

  it('per IP: CF-Connecting-IP only with VAULTMESH_TRUST_PROXY; loopback peers are the tunnel and not IP-limited', async () => {
    const untrusted = await center({ rateLimitIpPerSec: 0.1, rateLimitIpBurst: 2 });
    for (let i = 0; i < 5; i++) {
      const r = await request(`${untrusted.url}/api/nodes`, { headers: { 'cf-connecting-ip': '203.0.113.5' } });
      expect(r.statusCode).toBe(401);
      await r.body.dump();
    }
    const trusted = await center({ rateLimitIpPerSec: 0.1, rateLimitIpBurst: 2, trustProxy: '1' });
    const codes: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await request(`${trusted.url}/api/nodes`, { headers: { 'cf-connecting-ip': '203.0.113.5' } });
      codes.push(r.statusCode);
      await r.body.dump();
    }
    expect(codes).toEqual([401, 401, 429]); // token guessing from one address is cut off
    const other = await request(`${trusted.url}/api/nodes`, { headers: { 'cf-connecting-ip': '198.51.100.7', authorization: `Bearer ${trusted.adminToken}` } });
    expect(other.statusCode).toBe(200);
    await other.body.dump();
  });

  it('enrollment has its own per-address bucket, and an IPv6 client is one /64', async () => {
    const c = await center({ trustProxy: '1', rateLimitEnrollPerSec: 0.1, rateLimitEnrollBurst: 2 });
    const enrollFrom = async (ip: string, i: number) => {
      const n = testNode(c, `e${i}`);
      return (await n.send('POST', '/api/agent/enroll', { token: 'vmjoin_bogus-but-well-formed', node_id: `e${i}`, hostname: 'h', os_profile: 'debian', public_key: n.key.publicKeyHex, agent_version: '0.1.0', facts: {} }, { headers: { 'cf-connecting-ip': ip } })).status;
    };
    const codes = [await enrollFrom('2001:db8:1:2::10', 0), await enrollFrom('2001:db8:1:2:aaaa::1', 1), await enrollFrom('2001:0db8:0001:0002:ffff::2', 2)];
    expect(codes).toEqual([401, 401, 429]);
    expect(await enrollFrom('2001:db8:1:3::10', 3)).toBe(401); // another /64
    // The same address still reaches the rest of the API: only enrollment is cut off.
    const r = await request(`${c.url}/api/nodes`, { headers: { 'cf-connecting-ip': '2001:db8:1:2::10', authorization: `Bearer ${c.adminToken}` } });
    expect(r.statusCode).toBe(200);
    await r.body.dump();
  });

  it('keys IPv6 addresses by /64 and IPv4-mapped addresses by their IPv4 address', () => {
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('2001:0db8:0000:0000:1234::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey('192.0.2.7')).toBe('192.0.2.7');
  });

  it('per node: a node over its bucket gets 429; forged requests naming it do not drain it', async () => {
    const c = await center({ rateLimitNodePerSec: 0.1, rateLimitNodeBurst: 3 });
    const n = await enrolledNode(c, 'n1');
    const forger = testNode(c, 'n1'); // its own key, not n1's
    for (let i = 0; i < 10; i++) expect((await forger.send('POST', '/api/agent/heartbeat', heartbeatBody('n1'))).status).toBe(401);
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) codes.push((await n.send('POST', '/api/agent/heartbeat', heartbeatBody('n1', { id: `hb-${i}` }))).status);
    expect(codes).toEqual([200, 200, 200, 429]);
    // Other nodes are unaffected.
    const n2 = await enrolledNode(c, 'n2');
    expect((await n2.send('POST', '/api/agent/heartbeat', heartbeatBody('n2'))).status).toBe(200);
  });

  it('caps concurrent SSE streams per identity and frees a slot when a client goes', async () => {
    const c = await center({ sseMaxPerIdentity: 2 });
    const auth = { authorization: `Bearer ${c.adminToken}` };
    const a = await openSse(`${c.url}/events`, auth);
    const b = await openSse(`${c.url}/events`, auth);
    expect([a.status, b.status]).toEqual([200, 200]);
    const third = await request(`${c.url}/events`, { headers: auth });
    expect(third.statusCode).toBe(429);
    expect(((await third.body.json()) as any).error.code).toBe('TOO_MANY_STREAMS');
    await a.close();
    const limits = c.services.limits!;
    for (let i = 0; i < 100 && limits.openStreams('admin-token:admin') > 1; i++) await new Promise((r) => setTimeout(r, 20));
    expect(limits.openStreams('admin-token:admin')).toBe(1);
    const again = await openSse(`${c.url}/events`, auth);
    expect(again.status).toBe(200);
    await b.close();
    await again.close();
  });

  it('defaults do not get in the way of an ordinary fleet', async () => {
    const c = await center();
    const n = await enrolledNode(c, 'n1');
    const codes = await Promise.all(Array.from({ length: 200 }, (_, i) => n.send('POST', '/api/agent/heartbeat', heartbeatBody('n1', { id: `x-${i}` })).then((r) => r.status)));
    expect(codes.every((s) => s === 200)).toBe(true);
  });
});

describe('request timeout', () => {
  it('answers 503 REQUEST_TIMEOUT for a slow request, but leaves streams and long-polls alone', async () => {
    const manual = manualTimers();
    const limits = createAbuseLimits({ buckets: false, ip: { perSec: 1, burst: 1 }, identity: { perSec: 1, burst: 1 }, node: { perSec: 1, burst: 1 }, enroll: { perSec: 1, burst: 1 }, trustProxy: false, sseMaxPerIdentity: 1, requestTimeoutMs: 50 }, { timers: manual.timers });
    const app = new Hono<AppEnv>();
    app.use('*', limits.requestTimeout());
    // A handler that answers only when the test releases it, and says when it started.
    let entered: () => void = () => {};
    let release: () => void = () => {};
    const slow = (c: any) => {
      entered();
      return new Promise<Response>((r) => (release = () => r(c.json({ ok: true }))));
    };
    const started = () => new Promise<void>((r) => (entered = r));
    app.get('/api/slow', slow);
    app.get('/api/agent/commands', longRequest('long-poll'), slow);
    app.onError((err, c) => renderError(err, c));

    let inside = started();
    const timedOut = app.request('/api/slow');
    await inside;
    manual.advance(49);
    expect(manual.pending).toBe(1);
    manual.advance(1);
    const r = await timedOut;
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('1');
    expect(((await r.json()) as any).error.code).toBe('REQUEST_TIMEOUT');
    release();

    inside = started();
    const longPoll = app.request('/api/agent/commands');
    await inside;
    expect(manual.pending).toBe(0); // no deadline on a long-poll
    manual.advance(60_000);
    release();
    expect((await longPoll).status).toBe(200);
  });

  it('clears the deadline of a request that answered in time; start and stop manage one sweep interval', async () => {
    const manual = manualTimers();
    const limits = createAbuseLimits({ buckets: false, ip: { perSec: 1, burst: 1 }, identity: { perSec: 1, burst: 1 }, node: { perSec: 1, burst: 1 }, enroll: { perSec: 1, burst: 1 }, trustProxy: false, sseMaxPerIdentity: 1, requestTimeoutMs: 50 }, { timers: manual.timers });
    const app = new Hono<AppEnv>();
    app.use('*', limits.requestTimeout());
    app.get('/api/fast', (c) => c.json({ ok: true }));
    expect((await app.request('/api/fast')).status).toBe(200);
    expect(manual.pending).toBe(0);
    limits.start();
    limits.start(); // idempotent
    expect(manual.active).toBe(1);
    limits.stop();
    expect(manual.active).toBe(0);
  });
});

describe('long requests are marked on their route', () => {
  it('the timeout spares a marked route whatever its path, and applies to an unmarked one at a stream-like path', async () => {
    const limits = createAbuseLimits({ buckets: false, ip: { perSec: 1, burst: 1 }, identity: { perSec: 1, burst: 1 }, node: { perSec: 1, burst: 1 }, enroll: { perSec: 1, burst: 1 }, trustProxy: false, sseMaxPerIdentity: 1, requestTimeoutMs: 50 });
    const app = new Hono<AppEnv>();
    app.use('*', limits.requestTimeout());
    const slow = (c: any) => new Promise<Response>((r) => setTimeout(() => r(c.json({ ok: true })), 150));
    app.get('/anywhere/feed', longRequest('stream'), slow);
    app.get('/events', slow);
    app.onError((err, c) => renderError(err, c));
    expect((await app.request('/anywhere/feed')).status).toBe(200);
    const r = await app.request('/events');
    expect(r.status).toBe(503);
    expect(((await r.json()) as any).error.code).toBe('REQUEST_TIMEOUT');
  });

  it('the console stream counts against the same per-identity stream cap as GET /events', async () => {
    const c = await center({ sseMaxPerIdentity: 2 });
    const auth = { authorization: `Bearer ${c.adminToken}` };
    const a = await openSse(`${c.url}/events`, auth);
    const b = await openSse(`${c.url}/console/stream`, auth);
    expect([a.status, b.status]).toEqual([200, 200]);
    const third = await request(`${c.url}/console/stream`, { headers: auth });
    expect(third.statusCode).toBe(429);
    expect(((await third.body.json()) as any).error.code).toBe('TOO_MANY_STREAMS');
    // Ordinary console requests are not streams: the cap does not apply to them.
    const page = await request(`${c.url}/console`, { headers: auth });
    expect(page.statusCode).toBe(200);
    await page.body.dump();
    await a.close();
    await b.close();
  });
});
