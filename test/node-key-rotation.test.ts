/**
 * Agent key rotation on the API (POST /api/agent/rotate-key) against a real center: the rotation and its retries,
 * refused proofs and replays, the old key inside and after its overlap window, forks, and the same keys after a
 * restart by full replay and from a state snapshot.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { generateKeyPair, type KeyPair } from '../protocol/keys.js';
import { signRotation, checkNodeKeyBody } from '../protocol/node-key-rotation.js';
import { signPayload } from '../protocol/signing.js';
import { signRequest } from '../protocol/request-signing.js';
import { COMMAND_VERSION, signReceipt, type ReceiptPayload } from '../protocol/command.js';
import { request } from 'undici';
import { cleanupAfterEach, enrolledNode, heartbeatBody, startTestCenter, tempDir, testNode, type TestCenter } from './helpers.js';

const later = cleanupAfterEach();

describe('POST /api/agent/rotate-key', { timeout: 120_000 }, () => {
  let shiftMs = 0;
  const now = () => new Date(Date.now() + shiftMs);
  afterEach(() => {
    shiftMs = 0;
  });

  async function setup(overrides: Record<string, unknown> = {}) {
    const t = tempDir();
    const c = await startTestCenter(t.dir, { nodeKeyOverlapSecs: 600, ...overrides }, { now });
    later(async () => {
      await c.close();
      t.cleanup();
    });
    const old = await enrolledNode(c, 'rk-1');
    return { t, c, old };
  }
  const as = (c: TestCenter, key: KeyPair) => testNode(c, 'rk-1', key);
  const hb = (c: TestCenter, key: KeyPair) => as(c, key).send('POST', '/api/agent/heartbeat', heartbeatBody('rk-1'), { now });

  it('rotates: the new key signs at once, the old one until the overlap ends, then gets NODE_KEY_ROTATED naming its successor', async () => {
    const { c, old } = await setup();
    const next = generateKeyPair();
    const r = await old.send('POST', '/api/agent/rotate-key', signRotation('rk-1', old.key, next, now()), { now });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json).toMatchObject({ node_id: 'rk-1', old_key_id: old.key.keyId, new_key_id: next.keyId, rotated: true });
    const validUntil = Date.parse(r.json.old_key_valid_until);
    expect(validUntil - now().getTime()).toBeGreaterThan(590_000);
    expect(validUntil - now().getTime()).toBeLessThanOrEqual(600_000);

    expect((await hb(c, next)).status).toBe(200);
    expect((await hb(c, old.key)).status).toBe(200); // inside the window: in-flight requests still count

    const node = (await c.api('GET', '/api/nodes/rk-1')).json;
    expect(node.key_id).toBe(next.keyId);
    expect(node.public_key).toBe(next.publicKeyHex);
    expect(node.key_rotations).toEqual([{ old_key_id: old.key.keyId, new_key_id: next.keyId, at: expect.any(String), old_key_valid_until: r.json.old_key_valid_until, seq: r.json.seq }]);

    // The journaled envelope carries the statement and both signatures: it re-checks with nothing else.
    const events = (await c.api('GET', '/api/events?kind=node_key')).json;
    expect(events.items).toHaveLength(1);
    const e = events.items[0];
    expect(e).toMatchObject({ kind: 'node_key', node_id: 'rk-1', author: 'node:rk-1', body: { old_key_id: old.key.keyId, new_key_id: next.keyId } });
    expect(checkNodeKeyBody('rk-1', e.body)).toEqual({ ok: true });

    // The console's node page lists the rotation, and its timeline says what happened.
    const page = await request(`${c.url}/console?node=rk-1`, { headers: { authorization: `Bearer ${c.adminToken}` } });
    const html = await page.body.text();
    expect(page.statusCode).toBe(200);
    expect(html).toContain('Key rotations');
    expect(html).toMatch(new RegExp(`<code>${old.key.keyId}</code> → <code>${next.keyId}</code>`));
    expect(html).toContain(`node key rotated: ${old.key.keyId} → ${next.keyId}`);

    shiftMs = 601_000;
    const refused = await hb(c, old.key);
    expect(refused.status).toBe(401);
    expect(refused.json.error.code).toBe('NODE_KEY_ROTATED');
    expect(refused.json.error.message).toContain(`signed by key ${old.key.keyId}, which was replaced by ${next.keyId}`);
    expect(refused.json.error.message).toMatch(/restore the state dir .* or re-enroll/);
    expect((await hb(c, next)).status).toBe(200);
    // A key the node never had is still the one answer for forgeries.
    expect((await hb(c, generateKeyPair())).json.error.code).toBe('UNKNOWN_NODE');
  });

  it('is idempotent: the same rotation again is 200 (signed by the old key, or by the new one after the window), and journaled once', async () => {
    const { c, old } = await setup();
    const next = generateKeyPair();
    expect((await old.send('POST', '/api/agent/rotate-key', signRotation('rk-1', old.key, next, now()), { now })).json.rotated).toBe(true);
    const again = await old.send('POST', '/api/agent/rotate-key', signRotation('rk-1', old.key, next, now()), { now });
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ rotated: false, old_key_id: old.key.keyId, new_key_id: next.keyId });
    shiftMs = 700_000;
    // The agent crashed before it swapped its key files and came back after the window: it asks with the next key.
    expect((await old.send('POST', '/api/agent/rotate-key', signRotation('rk-1', old.key, next, now()), { now })).json.error.code).toBe('NODE_KEY_ROTATED');
    const byNew = await as(c, next).send('POST', '/api/agent/rotate-key', signRotation('rk-1', old.key, next, now()), { now });
    expect(byNew.status).toBe(200);
    expect(byNew.json.rotated).toBe(false);
    expect((await c.api('GET', '/api/events?kind=node_key')).json.items).toHaveLength(1);
  });

  it('chains from the current key; a different rotation of a replaced key is KEY_ROTATION_CONFLICT', async () => {
    const { c, old } = await setup();
    const b = generateKeyPair();
    const c2 = generateKeyPair();
    expect((await old.send('POST', '/api/agent/rotate-key', signRotation('rk-1', old.key, b, now()), { now })).status).toBe(200);
    const fork = await old.send('POST', '/api/agent/rotate-key', signRotation('rk-1', old.key, c2, now()), { now });
    expect(fork.status).toBe(409);
    expect(fork.json.error.code).toBe('KEY_ROTATION_CONFLICT');
    expect(fork.json.error.message).toContain(`already replaced by ${b.keyId}`);
    const chained = await as(c, b).send('POST', '/api/agent/rotate-key', signRotation('rk-1', b, c2, now()), { now });
    expect(chained.status).toBe(200);
    const node = (await c.api('GET', '/api/nodes/rk-1')).json;
    expect(node.key_id).toBe(c2.keyId);
    expect(node.key_rotations.map((r: { new_key_id: string }) => r.new_key_id)).toEqual([c2.keyId, b.keyId]);
    // Each replaced key keeps its own window: the first one still signs inside it.
    expect((await hb(c, old.key)).status).toBe(200);
  });

  it('refuses a bad proof of possession, a bad old-key signature and a malformed body, journaling nothing', async () => {
    const { c, old } = await setup();
    const next = generateKeyPair();
    const req = signRotation('rk-1', old.key, next, now());
    const noProof = await old.send('POST', '/api/agent/rotate-key', { ...req, new_key_signature: signPayload(req.statement, generateKeyPair()) }, { now });
    expect(noProof.status).toBe(401);
    expect(noProof.json.error).toMatchObject({ code: 'BAD_SIGNATURE', message: expect.stringMatching(/proof of possession/) });
    const badOld = await old.send('POST', '/api/agent/rotate-key', { ...req, old_key_signature: signPayload(req.statement, next) }, { now });
    expect(badOld.json.error.code).toBe('BAD_SIGNATURE');
    const otherNode = await old.send('POST', '/api/agent/rotate-key', signRotation('rk-2', old.key, next, now()), { now });
    expect(otherNode.status).toBe(403);
    expect(otherNode.json.error.code).toBe('NODE_MISMATCH');
    const malformed = await old.send('POST', '/api/agent/rotate-key', { statement: req.statement }, { now });
    expect(malformed.status).toBe(400);
    expect(malformed.json.error.code).toBe('VALIDATION_ERROR');
    // Not signed by the node at all.
    const unsigned = await c.api('POST', '/api/agent/rotate-key', req);
    expect(unsigned.status).toBe(401);
    expect(unsigned.json.error.code).toBe('MISSING_SIGNATURE');
    expect((await c.api('GET', '/api/events?kind=node_key')).json.items).toHaveLength(0);
    expect((await c.api('GET', '/api/nodes/rk-1')).json.key_id).toBe(old.key.keyId);
  });

  it('a receipt signed by the old key (the command finished just before the rotation) counts inside the window, not after it', async () => {
    const { c, old } = await setup();
    const issue = async () => (await c.api('POST', '/api/commands', { node_id: 'rk-1', action: 'ping' })).json.id as string;
    const [inside, after] = [await issue(), await issue()];
    expect((await old.send('GET', '/api/agent/commands?wait=0', undefined, { now })).json.commands).toHaveLength(2);
    const receipt = (id: string) => {
      const t = now().toISOString();
      const payload: ReceiptPayload = { v: COMMAND_VERSION, command_id: id, node_id: 'rk-1', status: 'succeeded', exit_code: 0, started_at: t, finished_at: t, output: '{}', truncated: false };
      return signReceipt(payload, old.key);
    };
    const next = generateKeyPair();
    expect((await old.send('POST', '/api/agent/rotate-key', signRotation('rk-1', old.key, next, now()), { now })).status).toBe(200);
    const ok = await as(c, next).send('POST', '/api/agent/receipts', receipt(inside), { now });
    expect(ok.status, JSON.stringify(ok.json)).toBe(200);
    shiftMs = 601_000;
    const late = await as(c, next).send('POST', '/api/agent/receipts', receipt(after), { now });
    expect(late.status).toBe(401);
    expect(late.json.error.code).toBe('BAD_SIGNATURE');
  });

  it('a replayed rotation request (same signed headers) is refused', async () => {
    const { c, old } = await setup();
    const body = JSON.stringify(signRotation('rk-1', old.key, generateKeyPair(), now()));
    const headers = { ...signRequest({ method: 'POST', path: '/api/agent/rotate-key', nodeId: 'rk-1', body }, old.key, { now }), 'content-type': 'application/json' };
    const send = async () => {
      const res = await request(`${c.url}/api/agent/rotate-key`, { method: 'POST', headers, body });
      return { status: res.statusCode, json: (await res.body.json()) as { error?: { code: string } } };
    };
    expect((await send()).status).toBe(200);
    const replay = await send();
    expect(replay.status).toBe(401);
    expect(replay.json.error?.code).toBe('REPLAYED_REQUEST');
  });

  it('a restart gives the same keys, by full replay and from the state snapshot', async () => {
    const t = tempDir();
    later(() => t.cleanup());
    let c = await startTestCenter(t.dir, { nodeKeyOverlapSecs: 600 }, { now });
    const old = await enrolledNode(c, 'rk-1');
    const next = generateKeyPair();
    const r = await old.send('POST', '/api/agent/rotate-key', signRotation('rk-1', old.key, next, now()), { now });
    expect(r.status).toBe(200);
    const before = (await c.api('GET', '/api/nodes/rk-1')).json;
    await c.close();
    for (const snapshotOff of [true, false]) {
      c = await startTestCenter(t.dir, { nodeKeyOverlapSecs: 600, snapshotOff }, { now });
      try {
        expect(c.snapshot.used).toBe(!snapshotOff);
        const after = (await c.api('GET', '/api/nodes/rk-1')).json;
        expect({ key_id: after.key_id, public_key: after.public_key, key_rotations: after.key_rotations }).toEqual({ key_id: before.key_id, public_key: before.public_key, key_rotations: before.key_rotations });
        expect((await hb(c, next)).status).toBe(200);
        expect((await hb(c, old.key)).status).toBe(200);
        // The window's end was fixed when the rotation was journaled: the same after a restart.
        shiftMs = 601_000;
        expect((await hb(c, old.key)).json.error.code).toBe('NODE_KEY_ROTATED');
        shiftMs = 0;
      } finally {
        await c.close();
      }
    }
  });
});
