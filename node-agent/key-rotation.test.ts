import { existsSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { VaultMeshError } from '../protocol/errors.js';
import type { KeyPair } from '../protocol/keys.js';
import { checkRotation, rotateKeyRequestSchema } from '../protocol/node-key-rotation.js';
import { readKeyFile } from '../lib/key-file.js';
import { tempDir } from '../test/helpers.js';
import { openAgentState } from './agent-state.js';
import { createKeyRotator, keyRotationDue, liveKey, NEXT_KEY_FILE } from './key-rotation.js';
import { resolveAgentConfig } from './config.js';

const dirs: Array<() => void> = [];
afterEach(() => dirs.splice(0).forEach((f) => f()));

/** A center that knows one key per node and checks rotations as the real one does (or fails as told). */
function fakeCenter(initial: KeyPair) {
  let current = initial.publicKeyHex;
  const done = new Map<string, string>();
  const calls: Array<{ signer: string }> = [];
  let fail: ((signer: KeyPair) => unknown) | undefined;
  return {
    calls,
    get currentKey() {
      return current;
    },
    failWith(f: typeof fail) {
      fail = f;
    },
    async post(signer: KeyPair, path: string, raw: unknown) {
      calls.push({ signer: signer.keyId });
      expect(path).toBe('/api/agent/rotate-key');
      if (fail) {
        const r = fail(signer);
        if (r instanceof Error) throw r;
        return r;
      }
      const body = rotateKeyRequestSchema.parse(raw);
      const s = body.statement;
      if (done.get(s.old_key_id) === s.new_key_id) return { node_id: 'n1', old_key_id: s.old_key_id, new_key_id: s.new_key_id, rotated: false, old_key_valid_until: '2026-12-03T12:10:00.000Z' };
      if (signer.publicKeyHex !== current) throw new VaultMeshError('UNKNOWN_NODE', 'not this key', { status: 401 });
      const check = checkRotation(body, current);
      if (!check.ok) throw new VaultMeshError('BAD_SIGNATURE', check.message, { status: 401 });
      done.set(s.old_key_id, s.new_key_id);
      current = s.new_public_key;
      return { node_id: 'n1', old_key_id: s.old_key_id, new_key_id: s.new_key_id, rotated: true, old_key_valid_until: '2026-12-03T12:10:00.000Z' };
    },
  };
}

function setup() {
  const t = tempDir();
  dirs.push(t.cleanup);
  const store = openAgentState(t.dir);
  store.write({ ...store.read(), enrollment: 'approved' });
  const center = fakeCenter(store.key);
  const logs: string[] = [];
  // Requests wait here while a test holds the gate (a rotation in flight, its next key on disk).
  let gate: Promise<void> | undefined;
  const rotator = createKeyRotator({ stateDir: t.dir, nodeId: 'n1', store, log: (m) => logs.push(m), post: async (k, p, b) => (await gate, center.post(k, p, b)) });
  const hold = () => {
    let open!: () => void;
    gate = new Promise((r) => (open = r));
    return () => {
      gate = undefined;
      open();
    };
  };
  return { dir: t.dir, store, center, rotator, logs, hold };
}

describe('createKeyRotator', () => {
  it('rotates: the next key is announced, then swapped in on disk (0600) and in the process', async () => {
    const { dir, store, center, rotator } = await setup();
    const old = store.key;
    const live = liveKey(store);
    const r = await rotator.rotate();
    expect(r).toMatchObject({ old_key_id: old.keyId, rotated: true, resumed: false });
    expect(store.key.keyId).toBe(r.new_key_id);
    expect(live.keyId).toBe(r.new_key_id);
    expect(live.seed).toBe(store.key.seed);
    expect(center.currentKey).toBe(store.key.publicKeyHex);
    expect(readKeyFile(join(dir, 'node-key.pem')).keyId).toBe(r.new_key_id);
    expect(statSync(join(dir, 'node-key.pem')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'node-key.pem.pub'), 'utf8').trim()).toBe(store.key.publicKeyHex);
    expect(existsSync(join(dir, NEXT_KEY_FILE))).toBe(false);
    expect(center.calls).toEqual([{ signer: old.keyId }]);
  });

  it('a failed request keeps the old key and the pending next key; the next attempt finishes that same rotation', async () => {
    const { dir, store, center, rotator } = await setup();
    const old = store.key.keyId;
    center.failWith(() => new VaultMeshError('CC_UNREACHABLE', 'down'));
    await expect(rotator.rotate()).rejects.toThrow(/down/);
    expect(store.key.keyId).toBe(old);
    expect(readKeyFile(join(dir, 'node-key.pem')).keyId).toBe(old);
    const pending = readKeyFile(join(dir, NEXT_KEY_FILE));
    expect(statSync(join(dir, NEXT_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(rotator.pending()).toBe(true);
    center.failWith(undefined);
    const r = await rotator.rotate();
    expect(r).toMatchObject({ old_key_id: old, new_key_id: pending.keyId, resumed: true });
    expect(rotator.pending()).toBe(false);
  });

  it('an answer about another key is not trusted: nothing is swapped', async () => {
    const { store, center, rotator } = await setup();
    const old = store.key.keyId;
    center.failWith(() => ({ node_id: 'n1', old_key_id: old, new_key_id: '0123456789abcdef', rotated: true, old_key_valid_until: '2026-12-03T12:10:00.000Z' }));
    await expect(rotator.rotate()).rejects.toMatchObject({ code: 'BAD_ANSWER' });
    expect(store.key.keyId).toBe(old);
    expect(rotator.pending()).toBe(true);
  });

  it('when the old key is refused (the rotation was journaled before a crash, window over) it asks with the next key', async () => {
    const { store, center, rotator } = await setup();
    const old = store.key;
    let calls = 0;
    center.failWith((signer) => {
      calls++;
      if (signer.keyId === old.keyId) return new VaultMeshError('NODE_KEY_ROTATED', 'replaced', { status: 401 });
      return { node_id: 'n1', old_key_id: old.keyId, new_key_id: signer.keyId, rotated: false, old_key_valid_until: '2026-12-03T12:10:00.000Z' };
    });
    const r = await rotator.rotate();
    expect(calls).toBe(2);
    expect(r).toMatchObject({ old_key_id: old.keyId, rotated: false });
    expect(store.key.keyId).toBe(r.new_key_id);
  });

  it('a conflict (this key was rotated by another copy of the state dir) is reported and nothing is swapped', async () => {
    const { store, center, rotator, logs } = await setup();
    const old = store.key.keyId;
    center.failWith(() => new VaultMeshError('KEY_ROTATION_CONFLICT', 'already replaced by x', { status: 409 }));
    await expect(rotator.rotate()).rejects.toMatchObject({ code: 'KEY_ROTATION_CONFLICT' });
    expect(store.key.keyId).toBe(old);
    expect(logs.join('\n')).toMatch(/rotation refused: already replaced by x/);
  });

  it('runs one rotation at a time: two at once chain (A→B, then B→C), never two from the same key', async () => {
    const { store, center, rotator } = await setup();
    const a = store.key.keyId;
    const [r1, r2] = await Promise.all([rotator.rotate(), rotator.rotate()]);
    expect(r1.old_key_id).toBe(a);
    expect(r2.old_key_id).toBe(r1.new_key_id);
    expect(store.key.keyId).toBe(r2.new_key_id);
    expect(center.currentKey).toBe(store.key.publicKeyHex);
  });

  it('finishing a pending rotation while one is in flight waits for it and does not rotate the new key again', async () => {
    const { store, center, rotator, hold } = await setup();
    const a = store.key.keyId;
    const release = hold();
    const asked = rotator.rotate(); // the rotate-key command: its next key is on disk until the swap
    await expect.poll(() => rotator.pending()).toBe(true);
    const finishing = rotator.finishPending(); // the heartbeat loop's turn, meanwhile
    release();
    const r = await asked;
    await finishing;
    expect(r.old_key_id).toBe(a);
    expect(store.key.keyId).toBe(r.new_key_id);
    expect(center.calls).toHaveLength(1);
    expect(rotator.pending()).toBe(false);
  });

  it('a due rotation asked for while another runs is decided again after it: the fresh key is not due', async () => {
    const { dir, store, center, rotator, hold } = await setup();
    const a = store.key.keyId;
    const old = new Date(Date.now() - 3_600_000);
    utimesSync(join(dir, 'node-key.pem'), old, old);
    const release = hold();
    const asked = rotator.rotate();
    await expect.poll(() => rotator.pending()).toBe(true);
    const scheduled = rotator.rotateIfDue(60); // the key was born an hour ago when this was asked
    release();
    const r = await asked;
    await scheduled;
    expect(r.old_key_id).toBe(a);
    expect(store.key.keyId).toBe(r.new_key_id);
    expect(center.calls).toHaveLength(1);
    // Not in flight, an old key is still rotated on schedule.
    utimesSync(join(dir, 'node-key.pem'), old, old);
    await rotator.rotateIfDue(60);
    expect(center.calls).toHaveLength(2);
    expect(store.key.keyId).not.toBe(r.new_key_id);
  });

  it('an agent that is not approved has nothing to rotate and writes nothing', async () => {
    const { dir, store, rotator } = await setup();
    store.write({ ...store.read(), enrollment: 'pending' });
    await expect(rotator.rotate()).rejects.toMatchObject({ code: 'INVALID_STATE' });
    expect(existsSync(join(dir, NEXT_KEY_FILE))).toBe(false);
  });
});

describe('the rotation schedule', () => {
  it('is due when the key is as old as the setting; 0 is never', () => {
    expect(keyRotationDue(0, 60, 59_999)).toBe(false);
    expect(keyRotationDue(0, 60, 60_000)).toBe(true);
    expect(keyRotationDue(0, 0, 1e15)).toBe(false);
  });

  it('--rotate-key-every / VAULTMESH_ROTATE_KEY_EVERY take durations, off by default', () => {
    const every = (v?: string) => resolveAgentConfig(v === undefined ? {} : { rotateKeyEvery: v }, {}, {}).rotateKeyEvery;
    expect(every()).toBe(0);
    expect(every('30d')).toBe(30 * 86_400);
    expect(every('12h')).toBe(43_200);
    expect(every('90s')).toBe(90);
    expect(every('3600')).toBe(3600);
    expect(every('off')).toBe(0);
    expect(resolveAgentConfig({}, { VAULTMESH_ROTATE_KEY_EVERY: '7d' }, {}).rotateKeyEvery).toBe(7 * 86_400);
    expect(() => every('soon')).toThrow(/--rotate-key-every \/ VAULTMESH_ROTATE_KEY_EVERY: must be a duration/);
  });
});
