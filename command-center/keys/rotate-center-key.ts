/**
 * A center key rotation, in the order that makes a crash at any step safe (center-key-ring.ts): the next key is on
 * disk (0600) first, the ledgers get a last head under the old key, then the statement is journaled, then the ring
 * switches (the key file swap). One rotation at a time per center; across replicas the statement's serial is claimed
 * with it, so two replicas rotating at once cannot both announce rotation #n.
 */
import { signRotation, type CenterKeyStatement, type SignedRotation } from '../../protocol/center-key-rotation.js';
import { VaultMeshError } from '../../protocol/errors.js';
import type { EnvelopeDraft, Envelope } from '../../protocol/envelope.js';
import type { AppendOptions } from '../store/envelope-store.js';
import { claimKey, isClaimTaken } from '../store/envelope-store.js';
import { createMutex } from '../store/mutex.js';
import type { CenterKeyRing } from './center-key-ring.js';
import type { RotationRecord } from './center-key-history.js';

export interface RotatorDeps {
  ring: CenterKeyRing;
  history: () => readonly RotationRecord[];
  submit(draft: EnvelopeDraft, opts?: AppendOptions): Promise<{ envelope: Envelope; duplicate: boolean }>;
  /** Applies other replicas' writes first, so the serial and the old key are the latest. */
  syncLog: () => Promise<void>;
  /**
   * Signs a head with the old key over every ledger leaf so far (a no-op on an empty ledger or a follower), so the
   * chain hands over at the rotation: what the old key signed is covered by its own last head, not only by the new
   * key's first one, and a head timer that has not fired yet cannot leave the old key without a head.
   */
  sealLedgers: () => Promise<void>;
  now: () => Date;
}

export interface Rotator {
  /**
   * `fromKeyId`: the key the caller means to rotate away from (the CLI and the console send the one they showed). A
   * retried or repeated request finds another key current and is refused instead of rotating a second time.
   */
  rotate(input: { author: string; overlapSecs: number; fromKeyId?: string }): Promise<RotationRecord>;
}

export function createRotator(deps: RotatorDeps): Rotator {
  const lock = createMutex();
  return {
    rotate: (input) =>
      lock.run(async () => {
        await deps.syncLog();
        const oldKey = deps.ring.current(); // CENTER_KEY_NOT_HELD on a replica that lacks the announced key
        if (input.fromKeyId !== undefined && input.fromKeyId !== oldKey.keyId) {
          throw new VaultMeshError('CENTER_KEY_CHANGED', `the center key is ${oldKey.keyId}, not ${input.fromKeyId}: it was rotated since (vaultmesh keys show --history); nothing was done`, { status: 409 });
        }
        const next = deps.ring.prepare().key;
        await deps.sealLedgers(); // before the statement: once it is journaled, the ring may sign with the new key
        const serial = deps.history().reduce((m, r) => Math.max(m, r.statement.serial), 0) + 1;
        const at = deps.now();
        const statement: CenterKeyStatement = {
          serial,
          old_public_key: oldKey.publicKeyHex,
          old_key_id: oldKey.keyId,
          new_public_key: next.publicKeyHex,
          new_key_id: next.keyId,
          effective_at: at.toISOString(),
          overlap_until: new Date(at.getTime() + input.overlapSecs * 1000).toISOString(),
        };
        const rotation: SignedRotation = signRotation(statement, oldKey, next);
        const { envelope } = await deps
          .submit({ kind: 'center_key', author: input.author, body: { action: 'rotate', rotation } }, { claims: [{ key: claimKey('center-key-rotation', serial) }] })
          .catch((err: unknown) => {
            if (isClaimTaken(err)) throw new VaultMeshError('INVALID_STATE', `another replica announced center key rotation #${serial} at the same moment; check vaultmesh keys show --history`, { status: 409 });
            throw err;
          });
        const record: RotationRecord = { ...rotation, seq: envelope.seq, author: envelope.author };
        const status = deps.ring.settle([...deps.history().filter((r) => r.statement.serial !== serial), record]);
        if (status.state !== 'ok') throw new VaultMeshError('CENTER_KEY_NOT_HELD', `rotation #${serial} was journaled but the key file swap did not complete; restart the center`, { status: 503 });
        return record;
      }),
  };
}
