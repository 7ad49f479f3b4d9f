import { describe, expect, it } from 'vitest';
import { request } from 'undici';
import { generateKeyPair } from '../../protocol/keys.js';
import { signRequest } from '../../protocol/request-signing.js';
import { signedPathOf } from './agent-auth.js';
import { cleanupAfterEach, enrolledNode, heartbeatBody, startTestCenter, tempDir, testNode, type TestCenter } from '../../test/helpers.js';

const onCleanup = cleanupAfterEach();

async function center(dir: string): Promise<TestCenter> {
  const c = await startTestCenter(dir, { orchestratorTickSecs: 0 });
  onCleanup(() => c.close());
  return c;
}

/** Sends exactly these headers and body, so a captured request can be sent again byte for byte. */
async function sendRaw(url: string, method: 'GET' | 'POST', path: string, headers: Record<string, string>, body = '') {
  const res = await request(url + path, { method, headers: { ...headers, ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) }, ...(method === 'POST' ? { body } : {}) });
  const text = await res.body.text();
  return { status: res.statusCode, json: text ? JSON.parse(text) : undefined };
}

function enrollBody(token: string, nodeId: string, publicKey: string) {
  return { token, node_id: nodeId, hostname: `${nodeId}.example`, os_profile: 'debian', public_key: publicKey, agent_version: '0.1.0', facts: {} };
}

describe('agent request authentication', () => {
  it('refuses a request captured before a restart, inside the skew window (heartbeat and long-poll)', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    let c = await center(t.dir);
    const node = await enrolledNode(c, 'web1');
    const hb = JSON.stringify(heartbeatBody('web1', { hostname: 'evil.example' }));
    const hbHeaders = signRequest({ method: 'POST', path: '/api/agent/heartbeat', nodeId: 'web1', body: hb }, node.key);
    expect((await sendRaw(c.url, 'POST', '/api/agent/heartbeat', hbHeaders, hb)).status).toBe(200);
    const pollHeaders = signRequest({ method: 'GET', path: '/api/agent/commands?wait=0', nodeId: 'web1', body: '' }, node.key);

    await c.close();
    c = await center(t.dir);
    const replayed = await sendRaw(c.url, 'POST', '/api/agent/heartbeat', hbHeaders, hb);
    expect(replayed.status).toBe(401);
    expect(replayed.json.error.code).toBe('CLOCK_SKEW');
    expect(replayed.json.error.message).toMatch(/before the center started/);
    expect((await sendRaw(c.url, 'GET', '/api/agent/commands?wait=0', pollHeaders)).status).toBe(401);
    // The agent re-signs every try, so a fresh request goes through.
    expect((await testNode(c, 'web1', node.key).send('POST', '/api/agent/heartbeat', heartbeatBody('web1'))).status).toBe(200);
  });

  it('answers a forged signature the same way for an enrolled and for an unknown node id', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await center(t.dir);
    await enrolledNode(c, 'web1');
    const stranger = generateKeyPair();
    const forgedKnown = await testNode(c, 'web1', stranger).send('POST', '/api/agent/heartbeat', heartbeatBody('web1'));
    const forgedUnknown = await testNode(c, 'ghost', stranger).send('POST', '/api/agent/heartbeat', heartbeatBody('ghost'));
    expect(forgedKnown.status).toBe(401);
    expect(forgedUnknown.status).toBe(401);
    const strip = (e: { code: string; message: string }) => ({ code: e.code, message: e.message.replace(/web1|ghost/g, 'ID') });
    expect(strip(forgedKnown.json.error)).toEqual(strip(forgedUnknown.json.error));
    expect(forgedKnown.json.error.code).toBe('UNKNOWN_NODE');
  });

  it('checks the join token before saying whether a node id is taken', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await center(t.dir);
    const original = await enrolledNode(c, 'web1');
    const clone = testNode(c, 'web1');
    const noToken = await clone.send('POST', '/api/agent/enroll', enrollBody('vmjoin_not-a-real-token', 'web1', clone.key.publicKeyHex));
    const freeId = testNode(c, 'web2');
    const noTokenFree = await freeId.send('POST', '/api/agent/enroll', enrollBody('vmjoin_not-a-real-token', 'web2', freeId.key.publicKeyHex));
    expect(noToken.status).toBe(401);
    expect(noToken.json.error.code).toBe('BAD_JOIN_TOKEN');
    expect(noTokenFree.json.error).toEqual(noToken.json.error);

    // With a valid token, a clone (same id, another key) is told which key holds the id and how to pick another.
    const token = (await c.api('POST', '/api/join-tokens', { uses: 1 })).json.token;
    const taken = await clone.send('POST', '/api/agent/enroll', enrollBody(token, 'web1', clone.key.publicKeyHex));
    expect(taken.status).toBe(409);
    expect(taken.json.error.code).toBe('NODE_EXISTS');
    expect(taken.json.error.message).toContain(original.key.keyId);
    expect(taken.json.error.message).toContain(clone.key.keyId);
    expect(taken.json.error.message).toMatch(/VAULTMESH_NODE_ID/);
    // The failed attempt did not spend the token.
    const ok = await freeId.send('POST', '/api/agent/enroll', enrollBody(token, 'web2', freeId.key.publicKeyHex));
    expect(ok.status).toBe(202);
  });

  it('records no replay-guard entry for an enrollment with a bad token', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await center(t.dir);
    const before = c.services.replayGuard.size;
    for (let i = 0; i < 50; i++) {
      const n = testNode(c, `spam${i}`);
      const r = await n.send('POST', '/api/agent/enroll', enrollBody('vmjoin_bogus-but-well-formed', `spam${i}`, n.key.publicKeyHex));
      expect(r.status).toBe(401);
    }
    expect(c.services.replayGuard.size).toBe(before);
  });

  it.each([0, 2])('with --verify-workers %i: signatures, skew window, replays and forgeries answer alike, concurrent requests each get their own answer', async (workers) => {
    const t = tempDir();
    onCleanup(t.cleanup);
    // Every check goes to the workers (a quiet test process would otherwise verify inline: verify-pool.test.ts).
    const c = await startTestCenter(t.dir, { orchestratorTickSecs: 0, verifyWorkers: workers, verifyInlineBelow: 0 });
    onCleanup(() => c.close());
    expect(c.services.verifier.workers).toBe(workers);
    const nodes = await Promise.all(['w1', 'w2', 'w3'].map((id) => enrolledNode(c, id)));
    const stranger = generateKeyPair();

    // 60 at once: good ones from three nodes interleaved with forged ones (a stranger's key) and tampered bodies.
    const sends = Array.from({ length: 60 }, (_, i) => {
      const n = nodes[i % 3]!;
      const id = `w${(i % 3) + 1}`;
      const kind = i % 4 === 3 ? 'forged' : i % 4 === 2 ? 'tampered' : 'good';
      const body = JSON.stringify(heartbeatBody(id, { id: `hb-${workers}-${i}` }));
      const headers = signRequest({ method: 'POST', path: '/api/agent/heartbeat', nodeId: id, body }, kind === 'forged' ? stranger : n.key);
      const sent = kind === 'tampered' ? body.replace(`hb-${workers}-${i}`, `hb-${workers}-${i}x`) : body;
      return sendRaw(c.url, 'POST', '/api/agent/heartbeat', headers, sent).then((r) => ({ kind, i, r }));
    });
    for (const { kind, i, r } of await Promise.all(sends)) {
      if (kind === 'good') {
        expect(r.status, `request ${i}`).toBe(200);
        expect(r.json.id).toBe(`hb-${workers}-${i}`);
      } else {
        expect(r.status, `request ${i}`).toBe(401);
        expect(r.json.error.code).toBe('UNKNOWN_NODE'); // not this node's key, whichever way
      }
    }

    // The same signed request sent twice at once: exactly one is accepted, the other is a replay.
    const body = JSON.stringify(heartbeatBody('w1'));
    const headers = signRequest({ method: 'POST', path: '/api/agent/heartbeat', nodeId: 'w1', body }, nodes[0]!.key);
    const twice = await Promise.all([sendRaw(c.url, 'POST', '/api/agent/heartbeat', headers, body), sendRaw(c.url, 'POST', '/api/agent/heartbeat', headers, body)]);
    expect(twice.map((r) => r.status).sort()).toEqual([200, 401]);
    expect(twice.find((r) => r.status === 401)!.json.error.code).toBe('REPLAYED_REQUEST');

    // Outside the skew window: refused before any signature check.
    const old = signRequest({ method: 'POST', path: '/api/agent/heartbeat', nodeId: 'w1', body }, nodes[0]!.key, { now: () => new Date(Date.now() - 3_600_000) });
    expect((await sendRaw(c.url, 'POST', '/api/agent/heartbeat', old, body)).json.error.code).toBe('CLOCK_SKEW');

    const metrics = await (await request(`${c.url}/metrics`, { headers: { authorization: `Bearer ${c.adminToken}` } })).body.text();
    expect(metrics).toMatch(new RegExp(`^vaultmesh_signature_workers ${workers}$`, 'm'));
    const stats = c.services.verifier.stats();
    if (workers > 0) {
      // A worker that lags (> 10 ms, likely on a loaded test machine) is skipped for inline checks, so only the split varies.
      expect(stats.onWorkers + stats.inline).toBeGreaterThanOrEqual(60);
      expect(stats.onWorkers).toBeGreaterThan(0);
      expect(stats.batches).toBeLessThanOrEqual(stats.onWorkers);
      expect(metrics).toMatch(new RegExp(`^vaultmesh_signature_checks_total\\{where="worker"\\} ${stats.onWorkers}$`, 'm'));
    } else {
      expect(stats.onWorkers).toBe(0);
      expect(stats.inline).toBeGreaterThanOrEqual(60);
    }
  });
});

describe('signedPathOf', () => {
  it('is new URL(href).pathname + search, for plain targets (cut out) and every other kind (parsed)', () => {
    const fixed = [
      '/api/agent/heartbeat',
      '/api/agent/commands/poll?wait=25&after=cmd-1',
      '/a?',
      '/a?#x',
      '/a#frag',
      '/a/./b',
      '/a/../b',
      '/a/..',
      '/a/.',
      '/a/.b/..c',
      '/a%2e%2e/b',
      "/a?x='y'",
      '/a b?c d',
      '/a\\b',
      '/ä?ö',
      '/a//b?c=d/e',
      '/a?b?c',
      '/~user/(x)*;,@:$!+=',
      '/a/<b>?{c}|^`"',
    ];
    const alphabet = ['a', 'Z', '0', '/', '.', '..', '?', '#', '%', '%2e', "'", ' ', '\\', '&', '=', '+', '~', '@', ':', ';', '(', 'é', '[', ']', '{', '|', '`', '"', '<'];
    let seed = 17;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const random = Array.from({ length: 3000 }, () => '/' + Array.from({ length: 1 + rnd(8) }, () => alphabet[rnd(alphabet.length)]).join(''));
    for (const target of [...fixed, ...random]) {
      for (const origin of ['http://127.0.0.1:8080', 'https://center.example']) {
        // A Request's url: normalised by URL, or (@hono/node-server's fast path) the raw target behind the origin.
        for (const href of [new URL(origin + target).href, origin + target]) {
          const url = new URL(href);
          expect(signedPathOf(href), href).toBe(url.pathname + url.search);
        }
      }
    }
  });
});
