import { describe, expect, it } from 'vitest';
import {
  checkRotation,
  missedRotation,
  missedRotationMessage,
  reviewRotations,
  rotationsToOffer,
  signRotation,
  trustedAfterRotations,
  type SignedRotation,
} from './center-key-rotation.js';
import { generateKeyPair, type KeyPair } from './keys.js';

const T0 = Date.parse('2026-06-01T00:00:00Z');
const at = (h: number) => new Date(T0 + h * 3_600_000);

function rotation(serial: number, from: KeyPair, to: KeyPair, effectiveH: number, overlapH: number): SignedRotation {
  return signRotation(
    {
      serial,
      old_public_key: from.publicKeyHex,
      old_key_id: from.keyId,
      new_public_key: to.publicKeyHex,
      new_key_id: to.keyId,
      effective_at: at(effectiveH).toISOString(),
      overlap_until: at(effectiveH + overlapH).toISOString(),
    },
    from,
    to,
  );
}
const keys = (...ks: KeyPair[]) => Object.fromEntries(ks.map((k) => [k.keyId, k.publicKeyHex]));

describe('rotation statements', () => {
  const [k0, k1, k2, evil] = [generateKeyPair(), generateKeyPair(), generateKeyPair(), generateKeyPair()];

  it('verifies a statement signed by the old key with proof of the new one, and refuses each broken part', () => {
    const r = rotation(1, k0, k1, 0, 24);
    expect(checkRotation(r)).toEqual({ ok: true });
    // Signed by a stranger instead of the old key.
    const forged = signRotation(r.statement, evil, k1);
    expect(checkRotation(forged)).toEqual({ ok: false, reason: expect.stringMatching(/not signed by the old key/) });
    // No proof of possession: the new signature is by someone else.
    expect(checkRotation({ ...r, new_signature: signRotation(r.statement, k0, evil).new_signature })).toEqual({ ok: false, reason: expect.stringMatching(/proof of possession/) });
    // A changed window invalidates both signatures.
    expect(checkRotation({ ...r, statement: { ...r.statement, overlap_until: at(9999).toISOString() } }).ok).toBe(false);
    expect(checkRotation({ ...r, statement: { ...r.statement, new_key_id: k2.keyId } })).toEqual({ ok: false, reason: expect.stringMatching(/does not match/) });
    const inverted = rotation(1, k0, k1, 10, 0);
    expect(checkRotation(signRotation({ ...inverted.statement, overlap_until: at(5).toISOString() }, k0, k1))).toEqual({ ok: false, reason: expect.stringMatching(/before effective_at/) });
    expect(checkRotation(signRotation({ ...r.statement, new_public_key: k0.publicKeyHex, new_key_id: k0.keyId }, k0, k0))).toEqual({ ok: false, reason: 'the new key is the old key' });
  });

  it('an agent trusting the old key accepts a statement in its window; the old key counts until overlap_until only', () => {
    const r = rotation(1, k0, k1, 0, 24);
    const review = reviewRotations(keys(k0), [], [r], at(1));
    expect(review.accept).toEqual([r]);
    expect(review.missed).toBeUndefined();
    expect(Object.keys(trustedAfterRotations(keys(k0), review.accept, at(1))).sort()).toEqual([k0.keyId, k1.keyId].sort());
    expect(Object.keys(trustedAfterRotations(keys(k0), review.accept, at(25)))).toEqual([k1.keyId]);
    // Nothing new the second time.
    expect(reviewRotations(keys(k0), [r], [r], at(2)).accept).toEqual([]);
  });

  it('refuses a statement signed by a key it does not trust, and a forged one from a key it does', () => {
    const r = rotation(1, evil, k1, 0, 24);
    expect(reviewRotations(keys(k0), [], [r], at(1))).toEqual({ accept: [], refused: [] });
    const forged = { ...rotation(1, k0, k1, 0, 24), old_signature: rotation(1, k0, k2, 0, 24).old_signature };
    const review = reviewRotations(keys(k0), [], [forged], at(1));
    expect(review.accept).toEqual([]);
    expect(review.refused).toEqual([{ serial: 1, reason: expect.stringMatching(/not signed by the old key/) }]);
  });

  it('takes a chain k0→k1→k2 in serial order, whatever order it arrives in', () => {
    const r1 = rotation(1, k0, k1, 0, 48);
    const r2 = rotation(2, k1, k2, 10, 48);
    const review = reviewRotations(keys(k0), [], [r2, r1], at(11));
    expect(review.accept.map((r) => r.statement.serial)).toEqual([1, 2]);
    expect(Object.keys(trustedAfterRotations(keys(k0), review.accept, at(11))).sort()).toEqual([k0.keyId, k1.keyId, k2.keyId].sort());
    expect(Object.keys(trustedAfterRotations(keys(k0), review.accept, at(100)))).toEqual([k2.keyId]);
  });

  it('past the window it accepts nothing and reports what it missed (and the center sees the same)', () => {
    const r1 = rotation(1, k0, k1, 0, 24);
    const review = reviewRotations(keys(k0), [], [r1], at(30));
    expect(review.accept).toEqual([]);
    expect(review.missed).toEqual({ old_key_id: k0.keyId, new_key_id: k1.keyId, effective_at: r1.statement.effective_at, overlap_until: r1.statement.overlap_until });
    expect(missedRotation([r1], k1.keyId, [k0.keyId], at(30))).toEqual(review.missed);
    expect(missedRotation([r1], k1.keyId, [k0.keyId], at(10))).toBeUndefined();
    expect(missedRotation([r1], k1.keyId, [k1.keyId], at(30))).toBeUndefined();
    const msg = missedRotationMessage(review.missed!, k1.publicKeyHex);
    expect(msg).toContain(k0.keyId);
    expect(msg).toContain(k1.keyId);
    expect(msg).toContain(r1.statement.effective_at);
    expect(msg).toContain(`VAULTMESH_CC_PUBKEY=${k1.publicKeyHex}`);
  });

  it('a chain whose first link expired is missed even if the second is in its window', () => {
    const r1 = rotation(1, k0, k1, 0, 24);
    const r2 = rotation(2, k1, k2, 40, 48);
    const review = reviewRotations(keys(k0), [], [r1, r2], at(41));
    expect(review.accept).toEqual([]);
    expect(review.missed?.new_key_id).toBe(k1.keyId);
    // An agent that took the first link in time takes the second.
    expect(reviewRotations(keys(k0), [r1], [r1, r2], at(41)).accept).toEqual([r2]);
  });

  it('the center offers nothing to an agent that trusts the current key, the chain to one that does not', () => {
    const r1 = rotation(1, k0, k1, 0, 24);
    const r2 = rotation(2, k1, k2, 40, 48);
    expect(rotationsToOffer([r1, r2], k2.keyId, [k2.keyId], at(41))).toEqual([]);
    expect(rotationsToOffer([r1, r2], k2.keyId, [k1.keyId], at(41))).toEqual([r2]);
    expect(rotationsToOffer([r2, r1], k2.keyId, [k0.keyId], at(41))).toEqual([r1, r2]);
    // An agent that does not say what it trusts gets the statements still in their window.
    expect(rotationsToOffer([r1, r2], k2.keyId, undefined, at(41))).toEqual([r2]);
    expect(rotationsToOffer([], k0.keyId, undefined, at(41))).toEqual([]);
  });
});
