import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach, openSse, startTestCenter, tempDir, type TestCenter } from '../../test/helpers.js';
import { identifyBearer, type Authenticator } from './operator-auth.js';

const onCleanup = cleanupAfterEach();

async function center(): Promise<TestCenter> {
  const t = tempDir();
  const c = await startTestCenter(t.dir);
  onCleanup(t.cleanup);
  onCleanup(() => c.close());
  return c;
}

/** Replaces the center's Bearer authenticators by one that counts how often it is asked. */
function countBearerChecks(c: TestCenter): { calls: number } {
  const counter = { calls: 0 };
  const bearer = c.services.authenticators.bearer;
  const real = [...bearer];
  const counting: Authenticator = (token) => {
    counter.calls++;
    return identifyBearer(real, token);
  };
  bearer.splice(0, bearer.length, counting);
  return counter;
}

async function login(c: TestCenter): Promise<string> {
  const res = await request(`${c.url}/console/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
    body: new URLSearchParams({ token: c.adminToken }).toString(),
  });
  await res.body.dump();
  expect(res.statusCode).toBe(303);
  const cookie = String(res.headers['set-cookie']).split(';')[0]!;
  expect(cookie).toMatch(/^vm_session=vms_/);
  return cookie;
}

describe('one identity per request', () => {
  it('asks the authenticators once per request on API, metrics, console and stream routes', async () => {
    const c = await center();
    const counter = countBearerChecks(c);
    const auth = { authorization: `Bearer ${c.adminToken}` };
    for (const path of ['/api/nodes', '/metrics', '/console', '/api/tokens']) {
      counter.calls = 0;
      const res = await request(c.url + path, { headers: auth });
      await res.body.dump();
      expect(res.statusCode, path).toBe(200);
      expect(counter.calls, path).toBe(1);
    }
    counter.calls = 0;
    const stream = await openSse(`${c.url}/console/stream`, auth);
    expect(stream.status).toBe(200);
    expect(counter.calls).toBe(1);
    await stream.close();
  });

  it('signs in through the Bearer authenticators and then knows the browser by its cookie alone', async () => {
    const c = await center();
    const counter = countBearerChecks(c);
    const cookie = await login(c);
    expect(counter.calls).toBe(1);
    counter.calls = 0;
    const nodes = await request(`${c.url}/api/nodes`, { headers: { cookie } });
    await nodes.body.dump();
    expect(nodes.statusCode).toBe(200);
    expect(counter.calls).toBe(0);
  });

  it('a cookie POST without its CSRF token is refused with the reason on the API and the console alike', async () => {
    const c = await center();
    const cookie = await login(c);
    const api = await request(`${c.url}/api/events`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'note', body: { text: 'x' } }) });
    expect(api.statusCode).toBe(403);
    expect(((await api.body.json()) as any).error.code).toBe('CSRF_REJECTED');
    const form = await request(`${c.url}/console/events`, { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: 'kind=note&text=x' });
    expect(form.statusCode).toBe(403);
    expect(((await form.body.json()) as any).error.code).toBe('CSRF_REJECTED');
    const none = await request(`${c.url}/console/events`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'kind=note&text=x' });
    expect(none.statusCode).toBe(401);
    expect(((await none.body.json()) as any).error.code).toBe('UNAUTHORIZED');
  });
});
