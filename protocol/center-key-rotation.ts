/**
 * Center key rotation statements (`center_key` envelopes in events.jsonl) and the rules both sides apply to them.
 *
 * A rotation statement names the old key, the new key, the instant from which the new key signs (`effective_at`;
 * in the log, the statement's own envelope seq) and the end of the overlap (`overlap_until`). It is signed by the
 * OLD key, which is what an agent that trusts the old key checks, and by the NEW key as proof that whoever announced
 * it holds the new private key. Both signatures are over the same canonical payload with a context string, so a
 * statement signature can never be replayed as a command or head signature (those sign other shapes).
 *
 * An agent adds the new key to its trusted keys when a statement is signed by a key it trusts and is still inside
 * its overlap window; after `overlap_until` the old key no longer counts for commands. A chain k0→k1→k2 is accepted
 * link by link in `serial` order. All of it is pure: callers pass the clock.
 */
import { z } from 'zod';
import { rfc3339Schema } from './envelope.js';
import { hexKeySchema, keyIdSchema, signatureHexSchema } from './hex.js';
import { keyIdOf, type KeyPair } from './keys.js';
import { signPayload, verifyPayload } from './signing.js';

export const CENTER_KEY_KIND = 'center_key';
const CONTEXT = 'vaultmesh center key rotation v1';

export const centerKeyStatementSchema = z
  .object({
    /** 1 for the first rotation of this center, then +1: the order in which a chain of statements is applied. */
    serial: z.number().int().positive(),
    old_public_key: hexKeySchema,
    old_key_id: keyIdSchema,
    new_public_key: hexKeySchema,
    new_key_id: keyIdSchema,
    /** From here on the center signs commands and ledger heads with the new key. */
    effective_at: rfc3339Schema,
    /** Until here agents also accept commands signed by the old key, and offline agents may still accept the statement. */
    overlap_until: rfc3339Schema,
  })
  .strict();
export type CenterKeyStatement = z.infer<typeof centerKeyStatementSchema>;

export const signedRotationSchema = z
  .object({ statement: centerKeyStatementSchema, old_signature: signatureHexSchema, new_signature: signatureHexSchema })
  .strict();
export type SignedRotation = z.infer<typeof signedRotationSchema>;

/** The `center_key` envelope body. */
export const centerKeyBodySchema = z.object({ action: z.literal('rotate'), rotation: signedRotationSchema }).strict();
export type CenterKeyBody = z.infer<typeof centerKeyBodySchema>;

/** At most this many statements travel in one enroll/heartbeat answer. */
export const MAX_OFFERED_ROTATIONS = 16;
export const offeredRotationsSchema = z.array(signedRotationSchema).max(MAX_OFFERED_ROTATIONS);

const signedBytes = (s: CenterKeyStatement) => ({ context: CONTEXT, statement: s });

export function signRotation(statement: CenterKeyStatement, oldKey: Pick<KeyPair, 'seed'>, newKey: Pick<KeyPair, 'seed'>): SignedRotation {
  return { statement, old_signature: signPayload(signedBytes(statement), oldKey), new_signature: signPayload(signedBytes(statement), newKey) };
}

export type RotationCheck = { ok: true } | { ok: false; reason: string };

/** Self-consistency: key ids match their keys, both signatures hold, the window is not inverted, the key changes. */
export function checkRotation(r: SignedRotation): RotationCheck {
  const s = r.statement;
  if (keyIdOf(s.old_public_key) !== s.old_key_id) return { ok: false, reason: `old_key_id ${s.old_key_id} does not match old_public_key` };
  if (keyIdOf(s.new_public_key) !== s.new_key_id) return { ok: false, reason: `new_key_id ${s.new_key_id} does not match new_public_key` };
  if (s.old_public_key === s.new_public_key) return { ok: false, reason: 'the new key is the old key' };
  if (Date.parse(s.overlap_until) < Date.parse(s.effective_at)) return { ok: false, reason: 'overlap_until is before effective_at' };
  if (!verifyPayload(signedBytes(s), r.old_signature, s.old_public_key)) return { ok: false, reason: `not signed by the old key ${s.old_key_id}` };
  if (!verifyPayload(signedBytes(s), r.new_signature, s.new_public_key)) return { ok: false, reason: `no proof of possession of the new key ${s.new_key_id}` };
  return { ok: true };
}

/** Trusted center keys by key_id. */
export type TrustedKeys = Record<string, string>;

const bySerial = (a: SignedRotation, b: SignedRotation) => a.statement.serial - b.statement.serial;
export const inWindow = (s: CenterKeyStatement, now: Date): boolean => now.getTime() <= Date.parse(s.overlap_until);

/**
 * The keys an agent trusts for commands now: its base keys (pinned or trusted on first use), plus every accepted
 * rotation's new key whose old key was trusted, minus old keys whose overlap has ended.
 */
export function trustedAfterRotations(base: TrustedKeys, accepted: readonly SignedRotation[], now: Date): TrustedKeys {
  const out: TrustedKeys = { ...base };
  for (const { statement: s } of [...accepted].sort(bySerial)) {
    if (!(s.old_key_id in out) && !(s.new_key_id in out)) continue;
    out[s.new_key_id] = s.new_public_key;
    if (!inWindow(s, now) && s.old_key_id !== s.new_key_id) delete out[s.old_key_id];
  }
  return out;
}

/** A rotation the agent trusts the signer of, but saw only after its overlap ended. */
export interface MissedRotation {
  old_key_id: string;
  new_key_id: string;
  effective_at: string;
  overlap_until: string;
}

export interface RotationReview {
  /** Newly accepted statements, in order (to append to the persisted list). */
  accept: SignedRotation[];
  /** The first offered link this agent cannot take because its window has passed. */
  missed?: MissedRotation;
  /** Statements refused for what they are (bad signature, key mismatch): logged, never stored. */
  refused: Array<{ serial: number; reason: string }>;
}

/**
 * What an agent does with the statements an answer offers: each, in serial order, is accepted when it is
 * well-signed, its old key is trusted (by the base keys or an earlier link) and it is still inside its window.
 * A well-signed link from a trusted key whose window has passed is reported as missed: the agent must not take it
 * on its own (a key that leaked after the overlap could sign one), the operator checks the new key out of band.
 */
export function reviewRotations(base: TrustedKeys, accepted: readonly SignedRotation[], offered: readonly SignedRotation[], now: Date): RotationReview {
  const review: RotationReview = { accept: [], refused: [] };
  const known = new Set(accepted.map((r) => `${r.statement.serial}:${r.statement.new_key_id}`));
  // Window-free view: which keys this agent has trusted at all, so an expired link from a key it trusted is "missed".
  const everTrusted = new Set(Object.keys(base));
  for (const r of [...accepted].sort(bySerial)) if (everTrusted.has(r.statement.old_key_id)) everTrusted.add(r.statement.new_key_id);
  for (const r of [...offered].sort(bySerial)) {
    const s = r.statement;
    if (known.has(`${s.serial}:${s.new_key_id}`)) continue;
    const trusted = trustedAfterRotations(base, [...accepted, ...review.accept], now);
    if (s.new_key_id in trusted) continue; // already trusted (pinned, say): nothing to learn
    if (!(s.old_key_id in trusted) && !everTrusted.has(s.old_key_id)) continue; // a link from a key this agent never trusted
    const check = checkRotation(r);
    if (!check.ok) {
      review.refused.push({ serial: s.serial, reason: check.reason });
      continue;
    }
    if (!inWindow(s, now) || !(s.old_key_id in trusted)) {
      review.missed ??= { old_key_id: s.old_key_id, new_key_id: s.new_key_id, effective_at: s.effective_at, overlap_until: s.overlap_until };
      continue;
    }
    review.accept.push(r);
    known.add(`${s.serial}:${s.new_key_id}`);
  }
  return review;
}

/**
 * Which statements the center puts in an answer to an agent that trusts `agentKeyIds` (from its heartbeat; undefined
 * for an agent that does not say): none when it already trusts the current key; else the chain from the first
 * statement whose old key it trusts (expired links included, so the agent can name what it missed); else, for an
 * agent that does not say, the statements still inside their window.
 */
export function rotationsToOffer(history: readonly SignedRotation[], currentKeyId: string, agentKeyIds: readonly string[] | undefined, now: Date): SignedRotation[] {
  if (history.length === 0) return [];
  if (agentKeyIds?.includes(currentKeyId)) return [];
  const sorted = [...history].sort(bySerial);
  if (agentKeyIds) {
    const from = sorted.findIndex((r) => agentKeyIds.includes(r.statement.old_key_id));
    if (from >= 0) return sorted.slice(from).slice(-MAX_OFFERED_ROTATIONS);
  }
  return sorted.filter((r) => inWindow(r.statement, now)).slice(-MAX_OFFERED_ROTATIONS);
}

/**
 * The center's view of an agent that missed a rotation: it trusts a key of the chain but the link after it has
 * passed its window, so it will refuse every command signed by the current key. Undefined when it is fine (or it
 * does not say which keys it trusts).
 */
export function missedRotation(history: readonly SignedRotation[], currentKeyId: string, agentKeyIds: readonly string[] | undefined, now: Date): MissedRotation | undefined {
  if (!agentKeyIds || agentKeyIds.includes(currentKeyId) || history.length === 0) return undefined;
  const chain = rotationsToOffer(history, currentKeyId, agentKeyIds, now);
  const ids = new Set(agentKeyIds);
  for (const { statement: s } of chain) {
    if (!ids.has(s.old_key_id)) continue;
    if (!inWindow(s, now)) return { old_key_id: s.old_key_id, new_key_id: s.new_key_id, effective_at: s.effective_at, overlap_until: s.overlap_until };
    ids.add(s.new_key_id);
  }
  return undefined;
}

/** The operator-facing words for a missed rotation, the same on the agent and the center. */
export function missedRotationMessage(m: MissedRotation, newPublicKey?: string): string {
  return (
    `the center rotated its key from ${m.old_key_id} to ${m.new_key_id} at ${m.effective_at}; the overlap ended at ${m.overlap_until}, ` +
    `before this agent saw the rotation, so it no longer accepts the new key on the old key's word and refuses commands signed by it. ` +
    `Check the new key out of band (on the center host: vaultmesh keys show --history) and pin it: VAULTMESH_CC_PUBKEY=${newPublicKey ?? `<public key of ${m.new_key_id}>`} ` +
    `(docs/OPERATIONS.md, "Rotating the center key")`
  );
}
