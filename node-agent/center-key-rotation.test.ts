import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { signRotation, type SignedRotation } from '../protocol/center-key-rotation.js';
import { generateKeyPair, type KeyPair } from '../protocol/keys.js';
import { tempDir } from '../test/helpers.js';
import { openAgentState } from './agent-state.js';
import { createRotationLearner, trustedCenterKeys } from './center-key-rotation.js';

const T0 = Date.parse('2026-06-01T00:00:00Z');
function rotation(serial: number, from: KeyPair, to: KeyPair, overlapMs: number): SignedRotation {
  return signRotation(
    { serial, old_public_key: from.publicKeyHex, old_key_id: from.keyId, new_public_key: to.publicKeyHex, new_key_id: to.keyId, effective_at: new Date(T0).toISOString(), overlap_until: new Date(T0 + overlapMs).toISOString() },
    from,
    to,
  );
}

describe('the agent learns center key rotations from answers', () => {
  const [k0, k1] = [generateKeyPair(), generateKeyPair()];

  it('persists an accepted statement (0600, atomically) and trusts both keys until the overlap ends; a pinned key works the same', () => {
    const t = tempDir();
    try {
      const store = openAgentState(t.dir);
      store.write({ ...store.read(), enrollment: 'approved', tofu_center_keys: [{ public_key: k0.publicKeyHex, key_id: k0.keyId }] });
      const logs: string[] = [];
      let now = new Date(T0 + 1000);
      const learner = createRotationLearner({ configured: [], store, log: (m) => logs.push(m), now: () => now });
      learner.learn({ seq: 1, center_key_rotations: [rotation(1, k0, k1, 60_000)] });
      expect(statSync(join(t.dir, 'agent-state.json')).mode & 0o777).toBe(0o600);
      const saved = JSON.parse(readFileSync(join(t.dir, 'agent-state.json'), 'utf8'));
      expect(saved.center_key_rotations).toHaveLength(1);
      expect(logs).toEqual([expect.stringMatching(new RegExp(`now trusting ${k1.keyId} \\(announced by ${k0.keyId}`))]);
      // A restart reads it back.
      const again = openAgentState(t.dir).read();
      expect(Object.keys(trustedCenterKeys([], again, now)).sort()).toEqual([k0.keyId, k1.keyId].sort());
      now = new Date(T0 + 61_000);
      expect(Object.keys(trustedCenterKeys([], again, now))).toEqual([k1.keyId]);
      // Pinned instead of first-use: the same rule.
      expect(Object.keys(trustedCenterKeys([k0.publicKeyHex], { ...again, tofu_center_keys: [] }, new Date(T0 + 1000))).sort()).toEqual([k0.keyId, k1.keyId].sort());
      // Offered again: nothing new stored or logged.
      learner.learn({ seq: 2, center_key_rotations: [rotation(1, k0, k1, 60_000)] });
      expect(openAgentState(t.dir).read().center_key_rotations).toHaveLength(1);
      expect(logs).toHaveLength(1);
    } finally {
      t.cleanup();
    }
  });

  it('past the overlap stores nothing and logs CENTER_KEY_ROTATION_MISSED once; malformed statements are ignored with a warning', () => {
    const t = tempDir();
    try {
      const store = openAgentState(t.dir);
      store.write({ ...store.read(), enrollment: 'approved' });
      const logs: string[] = [];
      const learner = createRotationLearner({ configured: [k0.publicKeyHex], store, log: (m) => logs.push(m), now: () => new Date(T0 + 120_000) });
      const late = rotation(1, k0, k1, 60_000);
      learner.learn({ center_key_rotations: [late] });
      learner.learn({ center_key_rotations: [late] });
      expect(store.read().center_key_rotations).toEqual([]);
      expect(logs).toHaveLength(1);
      expect(logs[0]).toMatch(new RegExp(`^ERROR: CENTER_KEY_ROTATION_MISSED: .*from ${k0.keyId} to ${k1.keyId}.*VAULTMESH_CC_PUBKEY=${k1.publicKeyHex}`));
      learner.learn({ center_key_rotations: [{ statement: { serial: 'x' } }] });
      expect(logs[1]).toMatch(/WARNING: ignoring malformed center key rotation statements/);
      // The center's notice is logged (once) when the agent has nothing to review itself.
      learner.learn({ center_key_notice: { code: 'CENTER_KEY_ROTATION_MISSED', message: 'the center says so' } });
      learner.learn({ center_key_notice: { code: 'CENTER_KEY_ROTATION_MISSED', message: 'the center says so' } });
      expect(logs.slice(2)).toEqual(['ERROR: CENTER_KEY_ROTATION_MISSED (from the center): the center says so']);
    } finally {
      t.cleanup();
    }
  });
});
