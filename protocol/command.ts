/**
 * Signed commands and receipts: the wire contract between the command center (which signs commands) and the
 * agent (which verifies, executes and answers with a receipt signed by its node key). Everything here is pure:
 * schemas, payload construction, signing and the `verifyCommand` decision an agent makes before running anything.
 *
 * A signature is Ed25519 (RFC 8032) over the RFC 8785 canonical bytes of `payload`, lowercase hex, so any standard
 * implementation (OpenSSL `pkeyutl -rawin`, node:crypto, @noble/ed25519) verifies it.
 */
import { z } from 'zod';
import { idSchema, nodeIdSchema, rfc3339Schema } from './envelope.js';
import { nodeCryptoBackend, type Ed25519Backend } from './ed25519.js';
import { signPayload, verifyPayload } from './signing.js';
import { keyIdSchema, signatureHexSchema } from './hex.js';

export { keyIdSchema, signatureHexSchema };
import type { KeyPair } from './keys.js';

export const COMMAND_VERSION = 1 as const;

export const COMMAND_LIMITS = {
  /** Keys in `args`. */
  argKeys: 16,
  argString: 1024,
  /** Bytes of receipt `output` (UTF-8); longer output is cut and `truncated` set. */
  output: 64 * 1024,
  reasonMessage: 1024,
  /** Longest accepted lifetime (expires_at − issued_at). */
  maxTtlMs: 24 * 3600 * 1000,
} as const;

/** Default lifetime of a command, 5 min (docs/PROTOCOL.md). */
export const DEFAULT_COMMAND_TTL_MS = 5 * 60 * 1000;

export const actionNameSchema = z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, 'must be 1-64 of a-z 0-9 - starting with a letter');
/** ≥128 random bits as lowercase hex (32 to 128 hex characters). */
export const nonceSchema = z.string().regex(/^(?:[0-9a-f]{2}){16,64}$/, 'must be 32-128 lowercase hex characters (≥128 bits)');

export const argValueSchema = z.union([z.string().max(COMMAND_LIMITS.argString), z.number().finite(), z.boolean(), z.null()]);
export const commandArgsSchema = z
  .record(z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, 'arg names are 1-32 of a-z 0-9 _'), argValueSchema)
  .refine((r) => Object.keys(r).length <= COMMAND_LIMITS.argKeys, `at most ${COMMAND_LIMITS.argKeys} args`);
export type CommandArgs = z.infer<typeof commandArgsSchema>;

export const commandPayloadSchema = z
  .object({
    v: z.literal(COMMAND_VERSION),
    id: idSchema,
    node_id: nodeIdSchema,
    action: actionNameSchema,
    args: commandArgsSchema,
    nonce: nonceSchema,
    issued_at: rfc3339Schema,
    expires_at: rfc3339Schema,
    key_id: keyIdSchema,
  })
  .strict();
export type CommandPayload = z.infer<typeof commandPayloadSchema>;

export const signedCommandSchema = z
  .object({ payload: commandPayloadSchema, signature: signatureHexSchema, key_id: keyIdSchema })
  .strict();
export type SignedCommand = z.infer<typeof signedCommandSchema>;

export const RECEIPT_STATUSES = ['succeeded', 'failed', 'rejected', 'expired'] as const;
export type ReceiptStatus = (typeof RECEIPT_STATUSES)[number];

export const receiptPayloadSchema = z
  .object({
    v: z.literal(COMMAND_VERSION),
    command_id: idSchema,
    node_id: nodeIdSchema,
    status: z.enum(RECEIPT_STATUSES),
    /** Machine-readable reason for `rejected` / `failed` / `expired` (a VerifyCode, TIMEOUT, NOT_IMPLEMENTED …). */
    reason: z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/).optional(),
    /** Process exit code when the action ran a program; 0/1 for built-ins; null when nothing ran. */
    exit_code: z.number().int().nullable(),
    started_at: rfc3339Schema,
    finished_at: rfc3339Schema,
    output: z.string().max(COMMAND_LIMITS.output),
    truncated: z.boolean(),
  })
  .strict();
export type ReceiptPayload = z.infer<typeof receiptPayloadSchema>;

export const signedReceiptSchema = z
  .object({ payload: receiptPayloadSchema, signature: signatureHexSchema, key_id: keyIdSchema })
  .strict();
export type SignedReceipt = z.infer<typeof signedReceiptSchema>;

/** Why an agent refuses a command. Stable: they appear in receipts, logs and docs/PROTOCOL.md. */
export const VERIFY_CODES = [
  'MALFORMED',
  'UNKNOWN_KEY',
  'BAD_SIGNATURE',
  'WRONG_NODE',
  'NOT_YET_VALID',
  'EXPIRED',
  'NONCE_REUSED',
  'ACTION_NOT_ALLOWED',
] as const;
export type VerifyCode = (typeof VERIFY_CODES)[number];

export interface VerifyContext {
  /** This node's id. */
  nodeId: string;
  /** Pinned command-center keys: key_id → 64-hex public key. */
  pinnedKeys: Readonly<Record<string, string>>;
  nowMs: number;
  /** How far issued_at may lie in the agent's future (center clock ahead). */
  maxSkewMs: number;
  /** True if this nonce was seen before (the persistent nonce store). Only consulted for authentic commands. */
  nonceSeen(nonce: string): boolean;
  allowedActions: ReadonlySet<string> | readonly string[];
  backend?: Ed25519Backend;
}

export type VerifyResult = { ok: true; command: SignedCommand } | { ok: false; code: VerifyCode; message: string };

/**
 * The agent's decision on a delivered command, in this order: well-formed, signed by a pinned key, signature
 * valid, addressed to this node, inside [issued_at − skew, expires_at], nonce never seen, action allowed.
 * Authenticity is checked before anything else, so an unauthenticated command learns nothing about the rest.
 * Pure: the nonce store is asked, never written (record the nonce only after `ok`).
 */
export function verifyCommand(input: unknown, ctx: VerifyContext): VerifyResult {
  const parsed = signedCommandSchema.safeParse(input);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    return { ok: false, code: 'MALFORMED', message: `${i.path.join('.') || 'command'}: ${i.message}` };
  }
  const cmd = parsed.data;
  const p = cmd.payload;
  if (cmd.key_id !== p.key_id) return { ok: false, code: 'MALFORMED', message: 'key_id differs between the signed command and its payload' };
  const publicKey = Object.hasOwn(ctx.pinnedKeys, cmd.key_id) ? ctx.pinnedKeys[cmd.key_id] : undefined;
  if (!publicKey) return { ok: false, code: 'UNKNOWN_KEY', message: `key ${cmd.key_id} is not a pinned command-center key` };
  if (!verifyPayload(p, cmd.signature, publicKey, ctx.backend ?? nodeCryptoBackend)) {
    return { ok: false, code: 'BAD_SIGNATURE', message: `signature does not verify under key ${cmd.key_id}` };
  }
  if (p.node_id !== ctx.nodeId) return { ok: false, code: 'WRONG_NODE', message: `command is for node ${p.node_id}, this is ${ctx.nodeId}` };
  const issued = Date.parse(p.issued_at);
  const expires = Date.parse(p.expires_at);
  if (!(expires > issued) || expires - issued > COMMAND_LIMITS.maxTtlMs) {
    return { ok: false, code: 'MALFORMED', message: 'expires_at must be after issued_at and at most 24 h later' };
  }
  if (ctx.nowMs < issued - ctx.maxSkewMs) {
    return { ok: false, code: 'NOT_YET_VALID', message: `issued_at ${p.issued_at} is more than ${ctx.maxSkewMs / 1000} s in the future` };
  }
  if (ctx.nowMs > expires) return { ok: false, code: 'EXPIRED', message: `command expired at ${p.expires_at}` };
  if (ctx.nonceSeen(p.nonce)) return { ok: false, code: 'NONCE_REUSED', message: 'this nonce was already used' };
  const allowed = ctx.allowedActions instanceof Set ? ctx.allowedActions.has(p.action) : (ctx.allowedActions as readonly string[]).includes(p.action);
  if (!allowed) return { ok: false, code: 'ACTION_NOT_ALLOWED', message: `action ${p.action} is not allowed on this node` };
  return { ok: true, command: cmd };
}

/** Builds a command payload; `random` supplies the 16-byte nonce and the id suffix. */
export function createCommandPayload(input: {
  id: string;
  nodeId: string;
  action: string;
  args: CommandArgs;
  nonce: string;
  now: Date;
  ttlMs?: number;
  keyId: string;
}): CommandPayload {
  return {
    v: COMMAND_VERSION,
    id: input.id,
    node_id: input.nodeId,
    action: input.action,
    args: input.args,
    nonce: input.nonce,
    issued_at: input.now.toISOString(),
    expires_at: new Date(input.now.getTime() + (input.ttlMs ?? DEFAULT_COMMAND_TTL_MS)).toISOString(),
    key_id: input.keyId,
  };
}

/** Signs a command payload with the command-center key. */
export function signCommand(payload: CommandPayload, key: Pick<KeyPair, 'seed' | 'keyId'>, backend: Ed25519Backend = nodeCryptoBackend): SignedCommand {
  return { payload, signature: signPayload(payload, key, backend), key_id: key.keyId };
}

/** Signs a receipt with the node key. */
export function signReceipt(payload: ReceiptPayload, key: Pick<KeyPair, 'seed' | 'keyId'>, backend: Ed25519Backend = nodeCryptoBackend): SignedReceipt {
  return { payload, signature: signPayload(payload, key, backend), key_id: key.keyId };
}

/** True when the receipt is signed by `publicKeyHex` (the node's enrolled key). */
export function verifyReceipt(receipt: SignedReceipt, publicKeyHex: string, backend: Ed25519Backend = nodeCryptoBackend): boolean {
  return verifyPayload(receipt.payload, receipt.signature, publicKeyHex, backend);
}

/**
 * Cuts `text` to at most `maxBytes` UTF-8 bytes without splitting a character; `truncated` says whether it did.
 */
export function boundOutput(text: string, maxBytes: number = COMMAND_LIMITS.output): { output: string; truncated: boolean } {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= maxBytes) return { output: text, truncated: false };
  let end = maxBytes;
  // Back up over UTF-8 continuation bytes (10xxxxxx) so the cut lands on a character boundary.
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return { output: buf.subarray(0, end).toString('utf8'), truncated: true };
}
