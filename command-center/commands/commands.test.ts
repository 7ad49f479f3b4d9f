import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { enrolledNode, openSse, startTestCenter, tempDir, testNode, type TestCenter, cleanupAfterEach } from '../../test/helpers.js';
import { signReceipt, verifyCommand, type ReceiptPayload, type SignedCommand } from '../../protocol/command.js';
import type { KeyPair } from '../../protocol/keys.js';
import { signRequest } from '../../protocol/request-signing.js';
import { request } from 'undici';
import { centerStores, storedText } from '../../test/center-stores.js';

const onCleanup = cleanupAfterEach();

function receipt(cmd: SignedCommand, key: KeyPair, over: Partial<ReceiptPayload> = {}) {
  const t = new Date().toISOString();
  return signReceipt(
    { v: 1, command_id: cmd.payload.id, node_id: cmd.payload.node_id, status: 'succeeded', exit_code: 0, started_at: t, finished_at: t, output: 'pong', truncated: false, ...over },
    key,
  );
}

describe.each(centerStores('commands on the center'))('commands on the center (%s store)', (_store, storeOverrides) => {
  // A restart in the same dir must find the same store (for PostgreSQL: the same database).
  const storeOf = new Map<string, Record<string, unknown>>();
  async function center(dir?: string, overrides = {}): Promise<TestCenter> {
    let d = dir;
    if (!d) {
      const t = tempDir();
      onCleanup(t.cleanup);
      d = t.dir;
    }
    if (!storeOf.has(d)) storeOf.set(d, await storeOverrides());
    const c = await startTestCenter(d, { ...storeOf.get(d), commandRedeliverSecs: 1, ...overrides });
    onCleanup(() => c.close());
    return c;
  }

  it('issue → long-poll delivers at once → receipt; status, signed form and receipt in GET /api/commands/:id; SSE command events', async () => {
    const c = await center();
    const node = await enrolledNode(c, 'web-01');
    const sse = await openSse(`${c.url}/events`, { authorization: `Bearer ${c.adminToken}` });
    onCleanup(() => sse.close());

    const t0 = performance.now();
    const polling = node.send('GET', '/api/agent/commands?wait=10');
    await new Promise((r) => setTimeout(r, 50));
    const issued = await c.api('POST', '/api/commands', { node_id: 'web-01', action: 'ping', args: {} });
    expect(issued.status).toBe(201);
    expect(issued.json).toMatchObject({ node_id: 'web-01', action: 'ping', status: 'queued' });
    const polled = await polling;
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(polled.status).toBe(200);
    const cmd = polled.json.commands[0] as SignedCommand;
    expect(cmd.payload.id).toBe(issued.json.id);
    expect(cmd.payload.nonce).toMatch(/^[0-9a-f]{32}$/);
    expect(Date.parse(cmd.payload.expires_at) - Date.parse(cmd.payload.issued_at)).toBe(300_000);
    const keys = { [c.services.centerKey.keyId]: c.services.centerKey.publicKeyHex };
    expect(verifyCommand(cmd, { nodeId: 'web-01', pinnedKeys: keys, nowMs: Date.now(), maxSkewMs: 60_000, nonceSeen: () => false, allowedActions: ['ping'] }).ok).toBe(true);
    expect((await c.api('GET', `/api/commands/${cmd.payload.id}`)).json.status).toBe('delivered');

    const r = await node.send('POST', '/api/agent/receipts', receipt(cmd, node.key));
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ status: 'succeeded', duplicate: false });
    const again = await node.send('POST', '/api/agent/receipts', receipt(cmd, node.key));
    expect(again.json.duplicate).toBe(true);

    const shown = (await c.api('GET', `/api/commands/${cmd.payload.id}`)).json;
    expect(shown).toMatchObject({ id: cmd.payload.id, status: 'succeeded', signed: cmd, receipt: { payload: { status: 'succeeded', output: 'pong' } } });
    await sse.waitFor((e) => e.event === 'command' && JSON.parse(e.data).body.status === 'succeeded');
    expect(sse.events.filter((e) => e.event === 'command').map((e) => JSON.parse(e.data).body.event)).toEqual(['issued', 'delivered', 'completed']);
    expect(sse.events.some((e) => e.event === 'receipt')).toBe(true);

    const list = await c.api('GET', '/api/commands?node_id=web-01&status=succeeded');
    expect(list.json.map((x: { id: string }) => x.id)).toEqual([cmd.payload.id]);
    const lines = (await storedText(c.config))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l).kind)
      .filter((k) => k === 'command' || k === 'receipt');
    expect(lines).toEqual(['command', 'command', 'receipt', 'command']);
  });

  it('refuses to sign outside the policy (403 POLICY_DENIED with the reason), bad args (400), unknown or unapproved nodes', async () => {
    const c = await center();
    await enrolledNode(c, 'web-01');
    await enrolledNode(c, 'web-02', { approve: false });
    const denied = await c.api('POST', '/api/commands', { node_id: 'web-01', action: 'service-restart', args: { unit: 'sshd.service' } });
    expect(denied.status).toBe(403);
    expect(denied.json.error.code).toBe('POLICY_DENIED');
    expect(denied.json.error.message).toMatch(/service-restart is not allowed for os_profile debian|unit sshd.service/);
    const unknown = await c.api('POST', '/api/commands', { node_id: 'web-01', action: 'shell', args: { cmd: 'id' } });
    expect(unknown.status).toBe(403);
    expect(unknown.json.error.code).toBe('POLICY_DENIED'); // decided by the parse result's code, not its wording
    expect(denied.json.error.details[0]).toMatchObject({ path: expect.stringMatching(/^(action|args\.unit)$/), rule: expect.stringMatching(/^(ACTION|UNIT)_NOT_ALLOWED$/) });
    const badArgs = await c.api('POST', '/api/commands', { node_id: 'web-01', action: 'collect-journal', args: { unit: 'x.service', lines: 5000 } });
    expect(badArgs.status).toBe(400);
    expect((await c.api('POST', '/api/commands', { node_id: 'nope', action: 'ping' })).status).toBe(404);
    expect((await c.api('POST', '/api/commands', { node_id: 'web-02', action: 'ping' })).status).toBe(409);
    expect((await c.api('GET', '/api/commands')).json).toEqual([]);
  });

  it('uses the policy file given by config', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const file = join(t.dir, 'policy.json');
    writeFileSync(file, JSON.stringify({ v: 1, profiles: { '*': { actions: ['ping'] }, debian: { actions: ['service-restart'], restart_units: ['nginx.service'] } } }));
    const c = await center(undefined, { policy: file });
    await enrolledNode(c, 'web-01');
    expect((await c.api('POST', '/api/commands', { node_id: 'web-01', action: 'service-restart', args: { unit: 'nginx.service' } })).status).toBe(201);
    expect((await c.api('POST', '/api/commands', { node_id: 'web-01', action: 'ping' })).status).toBe(403);
  });

  it('rejects receipts not signed by the node key, for other nodes or unknown commands', async () => {
    const c = await center();
    const a = await enrolledNode(c, 'web-01');
    const b = await enrolledNode(c, 'web-02');
    await c.api('POST', '/api/commands', { node_id: 'web-01', action: 'ping' });
    const cmd = (await a.send('GET', '/api/agent/commands?wait=0')).json.commands[0] as SignedCommand;
    expect((await a.send('POST', '/api/agent/receipts', receipt(cmd, b.key))).json.error.code).toBe('BAD_SIGNATURE');
    const tampered = { ...receipt(cmd, a.key), payload: { ...receipt(cmd, a.key).payload, output: 'forged' } };
    expect((await a.send('POST', '/api/agent/receipts', tampered)).status).toBe(401); // BAD_SIGNATURE, as for a request signature
    expect((await b.send('POST', '/api/agent/receipts', receipt(cmd, a.key))).json.error.code).toBe('NODE_MISMATCH');
    const other = receipt({ ...cmd, payload: { ...cmd.payload, id: 'cmd-none' } }, a.key);
    expect((await a.send('POST', '/api/agent/receipts', other)).json.error.code).toBe('UNKNOWN_COMMAND');
    expect((await c.api('GET', `/api/commands/${cmd.payload.id}`)).json.status).toBe('delivered');
  });

  it('queued, delivered and expired states survive a restart; unanswered deliveries are redelivered; overdue commands expire', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    let c = await center(t.dir);
    let node = await enrolledNode(c, 'web-01');
    const one = (await c.api('POST', '/api/commands', { node_id: 'web-01', action: 'ping' })).json.id;
    const first = await node.send('GET', '/api/agent/commands?wait=0');
    expect(first.json.commands.map((x: SignedCommand) => x.payload.id)).toEqual([one]);
    // not handed out again before the redelivery delay
    expect((await node.send('GET', '/api/agent/commands?wait=0')).json.commands).toEqual([]);
    const two = (await c.api('POST', '/api/commands', { node_id: 'web-01', action: 'ping', ttl_secs: 10 })).json.id;
    await c.close();

    c = await center(t.dir);
    node = testNode(c, 'web-01', node.key);
    expect((await c.api('GET', `/api/commands/${one}`)).json).toMatchObject({ status: 'delivered', deliveries: 1 });
    expect((await c.api('GET', `/api/commands/${two}`)).json.status).toBe('queued');
    await new Promise((r) => setTimeout(r, 1100));
    const again = await node.send('GET', '/api/agent/commands?wait=5');
    expect(again.json.commands.map((x: SignedCommand) => x.payload.id).sort()).toEqual([one, two].sort());
    expect((await c.api('GET', `/api/commands/${one}`)).json).toMatchObject({ status: 'delivered', deliveries: 2 });

    // expiry: a queued command past expires_at is marked expired by the sweep, and that survives restart
    const three = (await c.api('POST', '/api/commands', { node_id: 'web-01', action: 'ping', ttl_secs: 10 })).json.id;
    const realNow = c.services.now;
    const svc = c.services.commands!;
    // Drive the sweep with a clock 11 s ahead instead of waiting.
    const { createCommandService } = await import('./command-store.js');
    const ahead = createCommandService({ state: c.services.state, submit: c.services.submit, centerKey: c.services.centerKey, policy: svc.policy, now: () => new Date(realNow().getTime() + 11_000) });
    expect(await ahead.sweep()).toBe(1);
    expect((await c.api('GET', `/api/commands/${three}`)).json.status).toBe('expired');
    expect((await node.send('GET', '/api/agent/commands?wait=0')).json.commands).toEqual([]);
    await c.close();
    c = await center(t.dir);
    expect((await c.api('GET', `/api/commands/${three}`)).json.status).toBe('expired');
  });

  it('Idempotency-Key: a retry (also concurrent, also after a restart) answers the first command; other args with the same key are refused', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    let c = await center(t.dir);
    await enrolledNode(c, 'web-01');
    const send = (key: string, body: Record<string, unknown> = { node_id: 'web-01', action: 'ping' }) => c.api('POST', '/api/commands', body, { 'idempotency-key': key });
    const first = await send('op-7');
    expect(first.status).toBe(201);
    const burst = await Promise.all([send('op-8'), send('op-8'), send('op-8')]);
    expect(burst.map((r) => r.status).sort()).toEqual([200, 200, 201]);
    expect(new Set(burst.map((r) => r.json.id)).size).toBe(1);
    await c.close();
    c = await center(t.dir);
    const retry = await send('op-7');
    expect(retry.status).toBe(200);
    expect(retry.json).toMatchObject({ id: first.json.id, duplicate: true });
    const reused = await send('op-7', { node_id: 'web-01', action: 'ping', args: { message: 'other' } });
    expect(reused.status).toBe(409);
    expect(reused.json.error.code).toBe('DUPLICATE_COMMAND');
    expect((await send('bad key!')).status).toBe(400);
    // Without a key every POST is a new command; the same key from another identity is another key.
    const tok = (await c.api('POST', '/api/tokens', { name: 'bot', scopes: ['commands:write', 'nodes:read'] })).json.token;
    const other = await c.api('POST', '/api/commands', { node_id: 'web-01', action: 'ping' }, { 'idempotency-key': 'op-7', authorization: `Bearer ${tok}` });
    expect(other.status).toBe(201);
    expect(other.json.id).not.toBe(first.json.id);
    const list = (await c.api('GET', '/api/commands?node_id=web-01')).json;
    expect(list).toHaveLength(3);
  });

  it('a long-poll the agent abandoned (connection closed) does not swallow the next command', async () => {
    const c = await center();
    const node = await enrolledNode(c, 'n1');
    const path = '/api/agent/commands?wait=20';
    const ac = new AbortController();
    const p = request(c.url + path, { headers: signRequest({ method: 'GET', path, nodeId: 'n1', body: '' }, node.key), signal: ac.signal }).catch(() => 'aborted');
    await new Promise((r) => setTimeout(r, 200));
    ac.abort();
    await p;
    await new Promise((r) => setTimeout(r, 100));
    const id = (await c.api('POST', '/api/commands', { node_id: 'n1', action: 'ping' })).json.id;
    await new Promise((r) => setTimeout(r, 200));
    expect((await c.api('GET', `/api/commands/${id}`)).json.status).toBe('queued');
    expect((await node.send('GET', '/api/agent/commands?wait=0')).json.commands[0].payload.id).toBe(id);
  });
});
