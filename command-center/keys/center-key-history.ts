/**
 * The center key rotations the journal holds (`center_key` envelopes, events.jsonl), kept in the fleet state so a
 * state snapshot carries them: the ring settles against them at start-up, answers offer them to agents, and
 * `GET /api/keys` lists them.
 */
import type { SignedRotation } from '../../protocol/center-key-rotation.js';
import type { EnvelopeOf } from '../../protocol/envelope-kinds.js';

export interface RotationRecord extends SignedRotation {
  /** The statement's envelope seq: the point in the log from which the new key signs. */
  seq: number;
  author: string;
}

export interface CenterKeyHistory {
  rotations: RotationRecord[];
}

export function applyCenterKeyEnvelope(history: CenterKeyHistory, env: EnvelopeOf<'center_key'>): void {
  const r = env.body.rotation;
  // One statement per serial (claimed on replicas); a second line for a serial would be a bug, not a new key.
  if (history.rotations.some((x) => x.statement.serial === r.statement.serial)) return;
  history.rotations.push({ ...r, seq: env.seq, author: env.author });
}
