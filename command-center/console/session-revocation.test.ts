import { describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startTestCenter, tempDir, cleanupAfterEach } from '../../test/helpers.js';

const onCleanup = cleanupAfterEach();

describe('console sessions started with an API token', () => {
  it('end as soon as the token is revoked', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir);
    onCleanup(() => c.close());
    const created = await c.api('POST', '/api/tokens', { name: 'ops-laptop', scopes: ['nodes:read'] });
    expect(created.status).toBe(201);
    const login = await request(`${c.url}/console/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin', origin: c.url },
      body: new URLSearchParams({ token: created.json.token }).toString(),
    });
    await login.body.dump();
    const setCookie = String(login.headers['set-cookie'] ?? '');
    const cookie = /vm_session=[^;]+/.exec(setCookie)?.[0];
    expect(cookie, setCookie).toBeDefined();
    const nodes = async () => {
      const r = await request(`${c.url}/api/nodes`, { headers: { cookie: cookie! } });
      await r.body.dump();
      return r.statusCode;
    };
    expect(await nodes()).toBe(200);
    const id = created.json.token_id ?? created.json.id;
    expect((await c.api('DELETE', `/api/tokens/${id}`)).status).toBe(200);
    expect(await nodes()).toBe(401);
  });
});
