/**
 * What enroll and heartbeat answers add for center key rotation: the statements an agent lacks
 * (`center_key_rotations`), and, for an agent that missed a rotation's window, `center_key_notice` with the
 * CENTER_KEY_ROTATION_MISSED words (protocol/center-key-rotation.ts). Nothing at all for an agent that already
 * trusts the current key: the steady state costs no bytes.
 */
import { missedRotation, missedRotationMessage, rotationsToOffer, type SignedRotation } from '../../protocol/center-key-rotation.js';
import type { RotationRecord } from './center-key-history.js';

const NOTHING = Object.freeze({});

export function rotationAnswer(
  rotations: readonly RotationRecord[] | undefined,
  currentKeyId: string,
  agentKeyIds: readonly string[] | undefined,
  now: Date,
): { center_key_rotations?: SignedRotation[]; center_key_notice?: { code: 'CENTER_KEY_ROTATION_MISSED'; message: string } } {
  // The steady state, on every heartbeat: an agent that trusts the current key needs nothing.
  if (!rotations?.length || agentKeyIds?.includes(currentKeyId)) return NOTHING;
  const offer = rotationsToOffer(rotations, currentKeyId, agentKeyIds, now).map(({ statement, old_signature, new_signature }) => ({ statement, old_signature, new_signature }));
  const missed = missedRotation(rotations, currentKeyId, agentKeyIds, now);
  const full = missed && rotations.find((r) => r.statement.new_key_id === missed.new_key_id);
  return {
    ...(offer.length ? { center_key_rotations: offer } : {}),
    ...(missed ? { center_key_notice: { code: 'CENTER_KEY_ROTATION_MISSED', message: missedRotationMessage(missed, full?.statement.new_public_key) } } : {}),
  };
}
