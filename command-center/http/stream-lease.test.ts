/**
 * Streams end with their credential, over real HTTP with a real SSE client: `GET /events` with a scoped API token
 * after `DELETE /api/tokens/:id`, `/console/stream` after the token behind the session is revoked and after sign-out,
 * and any stream after `streamMaxSecs` (a manual clock). Nothing committed after the credential ended is delivered.
 */
import { describe, expect, it } from 'vitest';
import { request } from 'undici';
import { cleanupAfterEach, openSse, startTestCenter, tempDir, type TestCenter } from '../../test/helpers.js';

const onCleanup = cleanupAfterEach();

async function center(overrides: Record<string, unknown> = {}, opts: { now?: () => Date; keepaliveMs?: number; streamCheckMs?: number } = {}): Promise<TestCenter> {
  const t = tempDir();
  onCleanup(t.cleanup);
  const c = await startTestCenter(t.dir, { fsync: 'off', orchestratorTickSecs: 0, ...overrides }, opts);
  onCleanup(() => c.close());
  return c;
}

async function scopedToken(c: TestCenter, scopes: string[]): Promise<{ token: string; id: string }> {
  const r = await c.api('POST', '/api/tokens', { name: 'stream-bot', scopes });
  expect(r.status).toBe(201);
  return { token: r.json.token, id: r.json.token_id };
}

async function consoleLogin(c: TestCenter, token: string): Promise<{ cookie: string; csrf: string }> {
  const login = await request(`${c.url}/console/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin', origin: c.url },
    body: new URLSearchParams({ token }).toString(),
  });
  await login.body.dump();
  const cookie = /vm_session=[^;]+/.exec(String(login.headers['set-cookie'] ?? ''))![0];
  const page = await request(`${c.url}/console`, { headers: { cookie } });
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.body.text())![1]!;
  return { cookie, csrf };
}

const note = (c: TestCenter, text: string) => c.api('POST', '/api/events', { kind: 'note', body: { text } });
const isNote = (text: string) => (e: { event?: string; data: string }) => e.event === 'note' && JSON.parse(e.data).body.text === text;

describe('GET /events with an API token', () => {
  it('ends within the check interval once the token is revoked, with event: end', async () => {
    const c = await center({}, { keepaliveMs: 60_000, streamCheckMs: 50 });
    const bot = await scopedToken(c, ['events:read']);
    const sse = await openSse(`${c.url}/events`, { authorization: `Bearer ${bot.token}` });
    onCleanup(() => sse.close());
    expect(sse.status).toBe(200);
    await note(c, 'before');
    await sse.waitFor(isNote('before'));
    expect((await c.api('DELETE', `/api/tokens/${bot.id}`)).status).toBe(200);
    // No envelope needed: the idle check (every 50 ms here, every keepalive by default) ends it.
    const end = await sse.waitFor((e) => e.event === 'end');
    expect(JSON.parse(end.data)).toEqual({ reason: 'credential_invalid' });
    await sse.ended;
    expect(sse.closed).toBe(true);
    await note(c, 'after');
    expect(sse.events.some(isNote('after'))).toBe(false);
  });

  it('does not deliver an envelope committed after the revocation, even before the next idle check', async () => {
    const c = await center({}, { keepaliveMs: 60_000, streamCheckMs: 60_000 });
    const bot = await scopedToken(c, ['events:read']);
    const sse = await openSse(`${c.url}/events`, { authorization: `Bearer ${bot.token}` });
    onCleanup(() => sse.close());
    await sse.waitFor((e) => e.event === 'hello');
    expect((await c.api('DELETE', `/api/tokens/${bot.id}`)).status).toBe(200);
    await note(c, 'after revoke');
    const end = await sse.waitFor((e) => e.event === 'end');
    expect(JSON.parse(end.data).reason).toBe('credential_invalid');
    await sse.ended;
    expect(sse.events.some(isNote('after revoke'))).toBe(false);
  });

  it('an admin-token stream goes on through many lease checks, with its keepalives', async () => {
    const c = await center({}, { keepaliveMs: 100, streamCheckMs: 20 });
    const sse = await openSse(`${c.url}/events`, { authorization: `Bearer ${c.adminToken}` });
    onCleanup(() => sse.close());
    await sse.waitFor((e) => e.event === 'hello');
    const deadline = performance.now() + 5000;
    while (sse.comments.filter((k) => k === 'keepalive').length < 3 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(sse.comments.filter((k) => k === 'keepalive').length).toBeGreaterThanOrEqual(3);
    await note(c, 'still here');
    await sse.waitFor(isNote('still here'));
    expect(sse.closed).toBe(false);
    expect(sse.events.some((e) => e.event === 'end')).toBe(false);
  });
});

describe('/console/stream', () => {
  it('ends when the API token behind the session is revoked', async () => {
    const c = await center({}, { keepaliveMs: 60_000, streamCheckMs: 50 });
    const bot = await scopedToken(c, ['nodes:read']);
    const { cookie } = await consoleLogin(c, bot.token);
    const sse = await openSse(`${c.url}/console/stream`, { cookie });
    onCleanup(() => sse.close());
    expect(sse.status).toBe(200);
    await sse.waitFor((e) => e.event === 'hello');
    expect((await c.api('DELETE', `/api/tokens/${bot.id}`)).status).toBe(200);
    const end = await sse.waitFor((e) => e.event === 'end');
    expect(JSON.parse(end.data).reason).toBe('session_ended');
    await sse.ended;
  });

  it('ends when the operator signs out', async () => {
    const c = await center({}, { keepaliveMs: 60_000, streamCheckMs: 50 });
    const { cookie, csrf } = await consoleLogin(c, c.adminToken);
    const sse = await openSse(`${c.url}/console/stream`, { cookie });
    onCleanup(() => sse.close());
    await sse.waitFor((e) => e.event === 'hello');
    const out = await request(`${c.url}/console/logout`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
      body: new URLSearchParams({ _csrf: csrf }).toString(),
    });
    await out.body.dump();
    expect(out.statusCode).toBe(303);
    const end = await sse.waitFor((e) => e.event === 'end');
    expect(JSON.parse(end.data).reason).toBe('session_ended');
    await sse.ended;
  });
});

describe('stream lifetime', () => {
  it('every stream ends after streamMaxSecs, so the client re-authenticates', async () => {
    let nowMs = Date.parse('2026-01-01T00:00:00Z');
    const c = await center({ streamMaxSecs: 3600 }, { now: () => new Date(nowMs), keepaliveMs: 60_000, streamCheckMs: 20 });
    const sse = await openSse(`${c.url}/events`, { authorization: `Bearer ${c.adminToken}` });
    onCleanup(() => sse.close());
    await sse.waitFor((e) => e.event === 'hello');
    nowMs += 3599_000;
    await note(c, 'still open');
    await sse.waitFor(isNote('still open'));
    nowMs += 1000;
    const end = await sse.waitFor((e) => e.event === 'end');
    expect(JSON.parse(end.data).reason).toBe('max_lifetime');
    await sse.ended;
  });

  it('defaults to 12 h', async () => {
    const c = await center();
    expect(c.config.streamMaxSecs).toBe(12 * 3600);
  });
});
