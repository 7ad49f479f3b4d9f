import { describe, expect, it } from 'vitest';
import { request } from 'undici';
import { cleanupAfterEach, enrolledNode, startTestCenter, tempDir } from '../../test/helpers.js';

const onCleanup = cleanupAfterEach();

// A multipart body whose boundary never appears: the form parser throws on it.
const BROKEN = { 'content-type': 'multipart/form-data; boundary=----vm-missing', body: '------not-the-boundary\r\nContent-Disposition: form-data; name="kind"\r\n\r\nnote' };

describe('malformed form bodies', () => {
  it('answer 400 JSON on every form route, with a bearer token or a console session, and journal nothing', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir, { orchestratorTickSecs: 0 });
    onCleanup(() => c.close());
    await enrolledNode(c, 'web1', { approve: false });
    const login = await request(`${c.url}/console/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin', origin: c.url },
      body: new URLSearchParams({ token: c.adminToken }).toString(),
    });
    await login.body.dump();
    const cookie = /vm_session=[^;]+/.exec(String(login.headers['set-cookie'] ?? ''))![0];
    const seqBefore = c.services.state.lastSeq;
    const routes = ['/console/events', '/console/nodes/web1/approve', '/console/commands', '/api/events'];
    const credentials = [{ authorization: `Bearer ${c.adminToken}` }, { cookie, origin: c.url, 'sec-fetch-site': 'same-origin' }];
    for (const path of routes) {
      for (const cred of credentials) {
        // Approving reads no form fields: with a bearer token the body is never parsed (nor needed).
        if (path.endsWith('/approve') && 'authorization' in cred) continue;
        const r = await request(c.url + path, { method: 'POST', headers: { ...cred, 'content-type': BROKEN['content-type'] }, body: BROKEN.body });
        const text = await r.body.text();
        const what = `${path} with ${Object.keys(cred)[0]}`;
        expect(r.statusCode, `${what}: ${text}`).toBeGreaterThanOrEqual(400);
        expect(r.statusCode, `${what}: ${text}`).toBeLessThan(500);
        if (r.headers['content-type']?.toString().includes('json')) expect(JSON.parse(text).error.code, what).toMatch(/^[A-Z_]+$/);
      }
    }
    expect(c.services.state.lastSeq).toBe(seqBefore);
    expect(c.services.state.nodes.get('web1')!.enrollment).toBe('pending');
  });
});
