import { describe, expect, it } from 'vitest';
import { generateKeyPair, type KeyPair } from '../../protocol/keys.js';
import { signRotation } from '../../protocol/node-key-rotation.js';
import type { Envelope } from '../../protocol/envelope.js';
import { isVaultMeshError } from '../../protocol/errors.js';
import { applyEnvelope, createFleetState, type FleetState } from './fleet-state.js';
import { acceptedPublicKey, decideRotation, isWithinOverlap, keyRotations, MAX_REPLACED_KEYS } from './node-keys.js';

let seq = 0;
const env = (kind: string, nodeId: string, body: unknown, ts = '2026-12-03T12:00:00.000Z'): Envelope => ({ v: 1, id: `e${++seq}`, seq, ts, kind, node_id: nodeId, author: 'test', body }) as Envelope;

function enrolled(key: KeyPair): FleetState {
  const state = createFleetState();
  applyEnvelope(state, env('enrollment', 'n1', { action: 'request', token_id: 't', hostname: 'h', os_profile: 'debian', public_key: key.publicKeyHex, key_id: key.keyId, agent_version: '1', facts: {}, auto_approved: true }));
  return state;
}

function rotation(oldKey: KeyPair, newKey: KeyPair, validUntil: string, ts = '2026-12-03T12:00:00.000Z'): Envelope {
  const req = signRotation('n1', oldKey, newKey, new Date(ts));
  return env('node_key', 'n1', { action: 'rotate', old_key_id: oldKey.keyId, old_public_key: oldKey.publicKeyHex, new_key_id: newKey.keyId, new_public_key: newKey.publicKeyHex, ...req, old_key_valid_until: validUntil }, ts);
}

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return isVaultMeshError(err) ? err.code : String(err);
  }
  return 'no error';
};

describe('node key history (node_key envelopes)', () => {
  const a = generateKeyPair();
  const b = generateKeyPair();
  const c = generateKeyPair();

  it('a rotation makes the new key current and keeps the old one with its overlap end', () => {
    const state = enrolled(a);
    applyEnvelope(state, rotation(a, b, '2026-12-03T12:10:00.000Z'));
    const node = state.nodes.get('n1')!;
    expect(node.key_id).toBe(b.keyId);
    expect(node.public_key).toBe(b.publicKeyHex);
    expect(node.replaced_keys).toEqual([{ key_id: a.keyId, public_key: a.publicKeyHex, replaced_by: b.keyId, replaced_at: '2026-12-03T12:00:00.000Z', valid_until: '2026-12-03T12:10:00.000Z', seq: expect.any(Number) }]);
    expect(keyRotations(node)).toEqual([{ old_key_id: a.keyId, new_key_id: b.keyId, at: '2026-12-03T12:00:00.000Z', old_key_valid_until: '2026-12-03T12:10:00.000Z', seq: node.replaced_keys![0]!.seq }]);
  });

  it('the overlap window: the old key is accepted before its end, not at or after it', () => {
    const state = enrolled(a);
    applyEnvelope(state, rotation(a, b, '2026-12-03T12:10:00.000Z'));
    const node = state.nodes.get('n1')!;
    const end = Date.parse('2026-12-03T12:10:00.000Z');
    expect(isWithinOverlap(node.replaced_keys![0]!, end - 1)).toBe(true);
    expect(isWithinOverlap(node.replaced_keys![0]!, end)).toBe(false);
    expect(acceptedPublicKey(node, a.keyId, end - 1)).toBe(a.publicKeyHex);
    expect(acceptedPublicKey(node, a.keyId, end)).toBeUndefined();
    expect(acceptedPublicKey(node, b.keyId, end + 1e9)).toBe(b.publicKeyHex);
    expect(acceptedPublicKey(node, c.keyId, 0)).toBeUndefined();
  });

  it('a line that does not fit the node (stale old key, unknown node) changes nothing', () => {
    const state = enrolled(a);
    applyEnvelope(state, rotation(b, c, '2026-12-03T12:10:00.000Z'));
    expect(state.nodes.get('n1')!.key_id).toBe(a.keyId);
    expect(state.nodes.get('n1')!.replaced_keys).toBeUndefined();
  });

  it('re-enrolling the node starts a fresh key history', () => {
    const state = enrolled(a);
    applyEnvelope(state, rotation(a, b, '2026-12-03T12:10:00.000Z'));
    applyEnvelope(state, env('enrollment', 'n1', { action: 'request', token_id: 't', hostname: 'h', os_profile: 'debian', public_key: c.publicKeyHex, key_id: c.keyId, agent_version: '1', facts: {} }));
    expect(state.nodes.get('n1')!.replaced_keys).toBeUndefined();
    expect(state.nodes.get('n1')!.key_id).toBe(c.keyId);
  });

  it('keeps a bounded list of replaced keys', () => {
    let key = generateKeyPair();
    const state = enrolled(key);
    for (let i = 0; i < MAX_REPLACED_KEYS + 3; i++) {
      const next = generateKeyPair();
      applyEnvelope(state, rotation(key, next, '2026-12-03T12:10:00.000Z'));
      key = next;
    }
    expect(state.nodes.get('n1')!.replaced_keys).toHaveLength(MAX_REPLACED_KEYS);
    expect(state.nodes.get('n1')!.key_id).toBe(key.keyId);
  });
});

describe('decideRotation', () => {
  const a = generateKeyPair();
  const b = generateKeyPair();
  const c = generateKeyPair();
  const st = (old: KeyPair, next: KeyPair, nodeId = 'n1') => signRotation(nodeId, old, next, new Date()).statement;

  it('a rotation of the current key signed by it is new', () => {
    const node = enrolled(a).nodes.get('n1')!;
    expect(decideRotation(node, a.keyId, st(a, b))).toEqual({ kind: 'new' });
  });

  it('the same rotation again is done (a retry), signed by the old key or the new one', () => {
    const state = enrolled(a);
    applyEnvelope(state, rotation(a, b, '2026-12-03T12:10:00.000Z'));
    const node = state.nodes.get('n1')!;
    expect(decideRotation(node, a.keyId, st(a, b))).toMatchObject({ kind: 'done', rotation: { key_id: a.keyId, replaced_by: b.keyId } });
    expect(decideRotation(node, b.keyId, st(a, b))).toMatchObject({ kind: 'done' });
  });

  it('rotations chain from the current key; a fork from a replaced key is a conflict', () => {
    const state = enrolled(a);
    applyEnvelope(state, rotation(a, b, '2026-12-03T12:10:00.000Z'));
    const node = state.nodes.get('n1')!;
    expect(decideRotation(node, b.keyId, st(b, c))).toEqual({ kind: 'new' });
    expect(code(() => decideRotation(node, a.keyId, st(a, c)))).toBe('KEY_ROTATION_CONFLICT');
    expect(code(() => decideRotation(node, b.keyId, st(c, generateKeyPair())))).toBe('KEY_ROTATION_CONFLICT');
  });

  it('must be signed by the key it replaces, and name the signing node', () => {
    const state = enrolled(a);
    applyEnvelope(state, rotation(a, b, '2026-12-03T12:10:00.000Z'));
    const node = state.nodes.get('n1')!;
    expect(code(() => decideRotation(node, a.keyId, st(b, c)))).toBe('BAD_SIGNATURE');
    expect(code(() => decideRotation(node, b.keyId, st(b, c, 'n2')))).toBe('NODE_MISMATCH');
  });
});
