/**
 * The console's list view and history routes in-process (real services, journals in a temp dir, Bearer auth): paging,
 * sorting and filtering on the server, zod-validated parameters answered with 400 (never 5xx), the "older" pages of
 * the feed and a node's timeline read from the event log, operator auth on every new route, and escaping of
 * attacker-chosen hostnames.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { composeTestCenter, tempDir } from '../../test/helpers.js';
import { createApp } from '../http/app.js';

let c: Awaited<ReturnType<typeof composeTestCenter>>;
let cleanup: () => void;
let app: ReturnType<typeof createApp>;
const N = 120;
const ids = Array.from({ length: N }, (_, i) => `node-${String(i).padStart(3, '0')}`);

const get = (path: string, headers: Record<string, string> = {}) =>
  app.request(`http://localhost${path}`, { headers: { authorization: `Bearer ${c.adminToken}`, ...headers } });
const rowIds = (html: string) => [...html.matchAll(/<li id="node-([^"]+)" class="row/g)].map((m) => m[1]);

beforeAll(async () => {
  const t = tempDir('vm-console-list-');
  cleanup = t.cleanup;
  c = await composeTestCenter(t.dir, { eventsWindow: 20 });
  app = createApp(c.services);
  const submit = c.services.submit;
  for (const [i, id] of ids.entries()) {
    // Three nodes share each hostname, as a fleet of identical VMs would; one hostname is hostile markup.
    const hostname = i === 7 ? '<img src=x onerror=alert(1)>' : `vm-${Math.floor(i / 3)}`;
    await submit({ kind: 'enrollment', node_id: id, author: 'admin', body: { action: 'request', hostname, os_profile: i % 2 ? 'debian' : 'ubuntu', public_key: 'ab'.repeat(32), key_id: 'k'.repeat(16), agent_version: '0.1.0', facts: {}, auto_approved: true } });
  }
  for (const i of [3, 33, 63]) await submit({ kind: 'tag', node_id: ids[i]!, author: 'admin', body: { add: ['gpu', 'env=prod'] } });
  for (let i = 0; i < 80; i++) await submit({ kind: 'note', author: 'admin', body: { text: `note ${i}` }, ...(i % 2 ? { node_id: 'node-001' } : {}) });
}, 60_000);

afterAll(async () => {
  await c?.close();
  cleanup?.();
});

describe('GET /console: the node list is a page of the fleet', () => {
  test('the default view is the first 50 rows with a pager and column headers', async () => {
    const r = await get('/console');
    expect(r.status).toBe(200);
    const html = await r.text();
    expect(rowIds(html)).toHaveLength(50);
    expect(html).toContain(`1–50 of ${N} · page 1 of 3`);
    expect(html).toMatch(/<a href="\/console\?page=2" rel="next">/);
    expect(html).toMatch(/class="list-head"[^]*>Status<[^]*>Host · id<[^]*>Load<[^]*>Mem<[^]*>Seen</);
    expect(html).toContain('WAITING'); // approved, never heard from
  });

  test('sort by name, page size and page number select exactly that slice', async () => {
    const html = await (await get('/console?sort=name&size=25&page=2')).text();
    const sorted = [...ids].sort((a, b) => {
      const h = (id: string) => (id === 'node-007' ? '<img src=x onerror=alert(1)>' : `vm-${Math.floor(Number(id.slice(5)) / 3)}`);
      return h(a) < h(b) ? -1 : h(a) > h(b) ? 1 : a < b ? -1 : 1;
    });
    expect(rowIds(html)).toEqual(sorted.slice(25, 50));
    expect(html).toContain(`26–50 of ${N} · page 2 of 5`);
    expect(html).toContain('href="/console?sort=name&amp;size=25&amp;page=3" rel="next"');
    expect(html).toContain('href="/console?sort=name&amp;size=25" rel="prev"');
  });

  test('a page past the end shows the last page; search and profile filter before paging', async () => {
    expect(rowIds(await (await get('/console?page=99')).text())).toHaveLength(N - 100);
    const search = await (await get('/console?q=node-11')).text();
    expect(rowIds(search).sort()).toEqual(ids.filter((id) => id.startsWith('node-11')));
    const deb = await (await get('/console?profile=debian&size=100')).text();
    expect(rowIds(deb)).toHaveLength(N / 2);
    expect(await (await get('/console?q=zzz')).text()).toContain('No node matches this filter.');
    const gpu = await (await get('/console?tag=gpu')).text();
    expect(rowIds(gpu).sort()).toEqual([ids[3], ids[33], ids[63]]);
    expect(gpu).toMatch(/<option value="gpu" selected>gpu<\/option>/);
    expect(rowIds(await (await get('/console?tag=env%3Dprod&profile=debian')).text()).sort()).toEqual([ids[3], ids[33], ids[63]]);
    expect(rowIds(await (await get('/console?tag=env%3Dprod&profile=ubuntu')).text())).toEqual([]);
  });

  test('nodes sharing a hostname are told apart by a short id; hostile hostnames are escaped', async () => {
    const html = await (await get('/console?q=vm-0&sort=name')).text();
    expect(html).toMatch(/vm-0<\/span> <small class="nid" title="node id node-000">node-000<\/small>/);
    expect(html).toMatch(/vm-0<\/span> <small class="nid" title="node id node-001">node-001<\/small>/);
    const all = await (await get('/console?size=200')).text();
    expect(all).not.toContain('<img src=x');
    expect(all).toContain('&lt;img src=x onerror=alert(1)&gt;');
  });

  test('the filter form as a browser submits it (empty fields included) is a valid view', async () => {
    const r = await get('/console?q=&profile=&status=&sort=status&size=50');
    expect(r.status).toBe(200);
    expect(rowIds(await r.text())).toHaveLength(50);
  });

  test.each([
    ['status=bogus', 'status: one of'],
    ['sort=cpu', 'sort: one of status, name, last_seen'],
    ['page=0', 'page: a whole number from 1'],
    ['page=abc', 'page: a whole number from 1'],
    ['size=7', 'size: one of 25, 50, 100, 200'],
    ['profile=Bad%20Profile', 'profile: a profile name'],
    [`q=${'x'.repeat(65)}`, 'q: at most 64 characters'],
    ['tag=has%20space', 'tag: must be 1-64 of'],
  ])('?%s is refused with 400 and says why', async (query, message) => {
    const r = await get(`/console?${query}`);
    expect(r.status).toBe(400);
    expect(await r.text()).toContain(message);
  });

  test('the live stream refuses a bad view with a 400 JSON error', async () => {
    const r = await get('/console/stream?size=3');
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ error: { code: 'VALIDATION_ERROR' } });
  });
});

describe('older history from the event log', () => {
  test('the feed links to older events, and each page continues where the last ended', async () => {
    const html = await (await get('/console')).text();
    const first = [...html.matchAll(/<li id="ev-(\d+)"/g)].map((m) => Number(m[1]));
    expect(first).toHaveLength(50);
    const older = /href="(\/console\/feed\?before=(\d+))"/.exec(html);
    expect(older).not.toBeNull();
    expect(Number(older![2])).toBe(Math.min(...first));
    const page = await (await get(older![1]!, { 'hx-request': 'true' })).text();
    const second = [...page.matchAll(/<li id="ev-(\d+)"/g)].map((m) => Number(m[1]));
    expect(second).toHaveLength(50);
    expect(Math.max(...second)).toBeLessThan(Math.min(...first));
    expect(second).toEqual([...second].sort((a, b) => b - a));
    expect(page).toContain('id="feed-older"');
    // Without htmx the same link is a readable page.
    const plain = await get(older![1]!);
    expect(plain.status).toBe(200);
    expect(await plain.text()).toContain('<h1>Event feed</h1>');
  });

  test('a node timeline pages back through the log; the last page says so', async () => {
    const html = await (await get('/console?node=node-001')).text();
    expect(html).toContain('note 79');
    const m = /href="(\/console\/nodes\/node-001\/timeline\?before=(\d+))"/.exec(html);
    expect(m).not.toBeNull();
    const page = await (await get(m![1]!, { 'hx-request': 'true' })).text();
    // 40 notes fill the first page; the node's enrollment, older than all of them, is the next and last.
    expect(page).toMatch(/<li id="tl-\d+" class="k-enrollment"/);
    expect(page).not.toContain('note 79');
    expect(page).toContain('Start of the log.');
  });

  test.each([
    ['/console/feed?before=abc', 400],
    ['/console/feed', 400],
    ['/console/nodes/nope/timeline?before=5', 404],
    ['/console/nodes/bad%20id/timeline?before=5', 400],
  ])('%s → %d', async (path, status) => {
    expect((await get(path)).status).toBe(status);
  });

  test('every new route needs an operator', async () => {
    for (const path of ['/console/feed?before=10', '/console/nodes/node-001/timeline?before=10', '/console/stream?page=2']) {
      const r = await app.request(`http://localhost${path}`);
      expect(r.status, path).toBe(401);
    }
    expect((await app.request('http://localhost/console?page=2')).status).toBe(303); // the page redirects to sign-in
  });
});
