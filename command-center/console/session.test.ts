import { describe, expect, test } from 'vitest';
import { Hono } from 'hono';
import { createSessionStore, crossOriginReason, readCookie, resolveSession, SESSION_COOKIE } from './session.js';
import type { Identity } from '../auth/operator-auth.js';

const admin: Identity = { via: 'admin-token', name: 'admin', scopes: new Set(['admin']) };

describe('session store', () => {
  test('create → lookup; keeps only hashes; expires; destroy', () => {
    let t = 1000;
    const store = createSessionStore({ ttlMs: 60_000, now: () => t });
    const { id, session } = store.create(admin);
    expect(id).toMatch(/^vms_[A-Za-z0-9_-]{43}$/);
    expect(session.identity).toMatchObject({ via: 'session', name: 'admin' });
    expect(store.lookup(id)).toBe(session);
    expect(store.lookup(id + 'x')).toBeUndefined();
    expect(store.lookup('garbage')).toBeUndefined();
    t += 60_000;
    expect(store.lookup(id)).toBeUndefined();
    const again = store.create(admin);
    store.destroy(again.id);
    expect(store.lookup(again.id)).toBeUndefined();
  });

  test('bounded: the oldest session goes first', () => {
    const store = createSessionStore({ maxSessions: 2 });
    const a = store.create(admin);
    store.create(admin);
    store.create(admin);
    expect(store.size).toBe(2);
    expect(store.lookup(a.id)).toBeUndefined();
  });
});

test.each([
  ['a=1; vm_session=xyz; b=2', 'xyz'],
  ['vm_session=', ''],
  ['other=1', undefined],
  [undefined, undefined],
])('readCookie(%j)', (h, v) => expect(readCookie(h, SESSION_COOKIE)).toBe(v));

describe('same-origin check', () => {
  const app = new Hono();
  app.post('/', (c) => c.text(crossOriginReason(c) ?? 'ok'));
  test.each([
    [{ 'sec-fetch-site': 'same-origin' }, 'ok'],
    [{ 'sec-fetch-site': 'same-origin', origin: 'null' }, 'ok'], // no-referrer pages send Origin: null
    [{ 'sec-fetch-site': 'none' }, 'ok'],
    [{ 'sec-fetch-site': 'cross-site' }, 'Sec-Fetch-Site is cross-site'],
    [{ 'sec-fetch-site': 'same-site' }, 'Sec-Fetch-Site is same-site'],
    [{ origin: 'http://localhost' }, 'ok'],
    [{ origin: 'https://evil.example' }, 'Origin https://evil.example is not this site'],
    [{ origin: 'null' }, 'Origin is null'],
    [{}, 'ok'], // non-browser clients (curl) send neither; the CSRF token still applies
  ])('%j → %s', async (headers, out) => {
    const r = await app.request('http://localhost/', { method: 'POST', headers });
    expect(await r.text()).toBe(out);
  });
});

describe('session of a request', () => {
  const store = createSessionStore();
  const { id, session } = store.create(admin);
  const app = new Hono();
  app.all('/', async (c) => {
    const { session: found, refusal } = await resolveSession(c, store);
    if (refusal) return c.text(refusal.code, 403);
    const who = found?.identity;
    return c.text(who ? `${who.via}:${who.name}` : 'anonymous');
  });
  const cookie = `${SESSION_COOKIE}=${id}`;
  test.each([
    ['GET', {}, undefined, 'anonymous'],
    ['GET', { cookie }, undefined, 'session:admin'],
    ['POST', { cookie }, undefined, 'CSRF_REJECTED'],
    ['POST', { cookie, 'x-csrf-token': 'nope' }, undefined, 'CSRF_REJECTED'],
    ['POST', { cookie, 'x-csrf-token': session.csrfToken }, undefined, 'session:admin'],
    ['POST', { cookie, 'content-type': 'application/x-www-form-urlencoded' }, `_csrf=${session.csrfToken}`, 'session:admin'],
    ['POST', { cookie, 'x-csrf-token': session.csrfToken, 'sec-fetch-site': 'cross-site' }, undefined, 'CSRF_REJECTED'],
  ])('%s %j', async (method, headers, body, out) => {
    const r = await app.request('http://localhost/', { method, headers: headers as Record<string, string>, ...(body ? { body } : {}) });
    expect(await r.text()).toBe(out);
  });
});
