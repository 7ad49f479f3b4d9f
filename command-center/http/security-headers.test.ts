/**
 * The security headers every answer carries, over a real node:http server (where they are set on the
 * ServerResponse before the route runs) and through `app.request()` (no Node response: set on the Response after).
 */
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach, composeTestCenter, enrolledNode, heartbeatBody, startTestCenter, tempDir } from '../../test/helpers.js';
import { createApp } from './app.js';
import { signRequest } from '../../protocol/request-signing.js';

const onCleanup = cleanupAfterEach();
const EXPECTED = { 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'x-frame-options': 'DENY' };

const securityHeaders = (h: Record<string, unknown> | Headers) =>
  Object.fromEntries(Object.keys(EXPECTED).map((k) => [k, h instanceof Headers ? h.get(k) : h[k]]));

describe('security headers', () => {
  it('are on every answer of a real center: success, errors, 404, console, an event stream', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir, { orchestratorTickSecs: 0 });
    onCleanup(() => c.close());
    const node = await enrolledNode(c, 'n1');
    const body = JSON.stringify(heartbeatBody('n1'));
    const hb = await request(`${c.url}/api/agent/heartbeat`, {
      method: 'POST',
      headers: { ...signRequest({ method: 'POST', path: '/api/agent/heartbeat', nodeId: 'n1', body }, node.key), 'content-type': 'application/json' },
      body,
    });
    const answers = [
      { status: hb.statusCode, headers: hb.headers, json: await hb.body.json() },
      await c.api('GET', '/healthz'),
      await c.api('GET', '/api/nodes'),
      await c.api('GET', '/api/no-such-route'),
      await c.api('POST', '/api/join-tokens', '{not json'),
      await c.api('GET', '/api/nodes', undefined, { authorization: 'Bearer wrong' }),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 404, 400, 401]);
    for (const a of answers) expect(securityHeaders(a.headers as Record<string, unknown>)).toEqual(EXPECTED);

    const page = await request(`${c.url}/console`, { headers: { authorization: `Bearer ${c.adminToken}`, accept: 'text/html' } });
    await page.body.text();
    expect(page.statusCode).toBe(200);
    expect(securityHeaders(page.headers as Record<string, unknown>)).toEqual(EXPECTED);

    const stream = await request(`${c.url}/events`, { headers: { authorization: `Bearer ${c.adminToken}`, accept: 'text/event-stream' } });
    expect(stream.statusCode).toBe(200);
    expect(securityHeaders(stream.headers as Record<string, unknown>)).toEqual(EXPECTED);
    stream.body.destroy();
  });

  it('are on answers made in-process (app.request, no Node response)', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await composeTestCenter(t.dir);
    onCleanup(() => c.close());
    const app = createApp(c.services);
    for (const [path, status] of [['/healthz', 200], ['/api/nodes', 401], ['/nothing', 404]] as const) {
      const res = await app.request(path);
      expect(res.status).toBe(status);
      expect(securityHeaders(res.headers)).toEqual(EXPECTED);
    }
  });
});
