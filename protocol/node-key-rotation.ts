/**
 * Agent key rotation (`POST /api/agent/rotate-key`, envelope kind `node_key`). A node replaces its Ed25519 key
 * with a request signed by its current key; the body carries a canonical statement naming the node, the key being
 * replaced and the new key, signed by BOTH keys: the new key's signature is the proof of possession, the old key's
 * makes the journaled record checkable offline without the HTTP request (whose signature covers only a body hash).
 * Both signatures are over the same canonical bytes (RFC 8785), which carry a `type` no other signed payload has.
 */
import { z } from 'zod';
import { nodeIdSchema, rfc3339Schema } from './envelope.js';
import { hexKeySchema, keyIdSchema, signatureHexSchema } from './hex.js';
import { keyIdOf, type KeyPair } from './keys.js';
import { signPayload, verifyPayload } from './signing.js';
import { nodeCryptoBackend, type Ed25519Backend } from './ed25519.js';

export const NODE_KEY_STATEMENT_TYPE = 'vaultmesh/node-key-rotation/v1';

export const nodeKeyStatementSchema = z
  .object({
    type: z.literal(NODE_KEY_STATEMENT_TYPE),
    node_id: nodeIdSchema,
    old_key_id: keyIdSchema,
    new_key_id: keyIdSchema,
    new_public_key: hexKeySchema,
    issued_at: rfc3339Schema,
  })
  .strict();
export type NodeKeyStatement = z.infer<typeof nodeKeyStatementSchema>;

/** The body of `POST /api/agent/rotate-key`. */
export const rotateKeyRequestSchema = z
  .object({
    statement: nodeKeyStatementSchema,
    /** By the new key over the statement: proof of possession. */
    new_key_signature: signatureHexSchema,
    /** By the old (current) key over the statement: the journaled record stands on its own. */
    old_key_signature: signatureHexSchema,
  })
  .strict();
export type RotateKeyRequest = z.infer<typeof rotateKeyRequestSchema>;

/** The answer: the node's key after the call (`rotated: false` when it was already this key: a retry). */
export const rotateKeyAnswerSchema = z.looseObject({
  node_id: z.string(),
  old_key_id: keyIdSchema,
  new_key_id: keyIdSchema,
  rotated: z.boolean(),
  old_key_valid_until: rfc3339Schema,
});
export type RotateKeyAnswer = z.infer<typeof rotateKeyAnswerSchema>;

/** The `node_key` envelope body (events.jsonl). `old_key_valid_until` was fixed by the center when it journaled it. */
export const nodeKeyBodySchema = z
  .object({
    action: z.literal('rotate'),
    old_key_id: keyIdSchema,
    old_public_key: hexKeySchema,
    new_key_id: keyIdSchema,
    new_public_key: hexKeySchema,
    statement: nodeKeyStatementSchema,
    new_key_signature: signatureHexSchema,
    old_key_signature: signatureHexSchema,
    old_key_valid_until: rfc3339Schema,
  })
  .strict();
export type NodeKeyBody = z.infer<typeof nodeKeyBodySchema>;

export function nodeKeyStatement(nodeId: string, oldKey: Pick<KeyPair, 'keyId'>, newKey: Pick<KeyPair, 'publicKeyHex' | 'keyId'>, issuedAt: Date): NodeKeyStatement {
  return {
    type: NODE_KEY_STATEMENT_TYPE,
    node_id: nodeId,
    old_key_id: oldKey.keyId,
    new_key_id: newKey.keyId,
    new_public_key: newKey.publicKeyHex,
    issued_at: issuedAt.toISOString(),
  };
}

/** The request body an agent sends: the statement signed by both keys. */
export function signRotation(nodeId: string, oldKey: Pick<KeyPair, 'seed' | 'keyId'>, newKey: KeyPair, issuedAt: Date, backend: Ed25519Backend = nodeCryptoBackend): RotateKeyRequest {
  const statement = nodeKeyStatement(nodeId, oldKey, newKey, issuedAt);
  return { statement, new_key_signature: signPayload(statement, newKey, backend), old_key_signature: signPayload(statement, oldKey, backend) };
}

export type RotationCheck = { ok: true } | { ok: false; message: string };

/**
 * Checks a rotation on its own, with no state: the statement names the old key given, its new key id is its new
 * key's, the new key differs from the old, and both signatures verify. Used by the center before journaling and by
 * anyone re-checking a `node_key` envelope offline (`checkNodeKeyBody`).
 */
export function checkRotation(req: RotateKeyRequest, oldPublicKeyHex: string, backend: Ed25519Backend = nodeCryptoBackend): RotationCheck {
  const s = req.statement;
  if (keyIdOf(s.new_public_key) !== s.new_key_id) return { ok: false, message: `statement new_key_id ${s.new_key_id} is not the id of its new_public_key (${keyIdOf(s.new_public_key)})` };
  if (keyIdOf(oldPublicKeyHex) !== s.old_key_id) return { ok: false, message: `statement old_key_id ${s.old_key_id} is not key ${keyIdOf(oldPublicKeyHex)}` };
  if (s.new_public_key === oldPublicKeyHex) return { ok: false, message: 'the new key is the current key' };
  if (!verifyPayload(s, req.new_key_signature, s.new_public_key, backend)) return { ok: false, message: 'new_key_signature does not verify with the new key (no proof of possession)' };
  if (!verifyPayload(s, req.old_key_signature, oldPublicKeyHex, backend)) return { ok: false, message: 'old_key_signature does not verify with the old key' };
  return { ok: true };
}

/** Re-checks a journaled `node_key` body with nothing but itself. */
export function checkNodeKeyBody(nodeId: string, body: NodeKeyBody, backend: Ed25519Backend = nodeCryptoBackend): RotationCheck {
  const s = body.statement;
  if (s.node_id !== nodeId) return { ok: false, message: `statement names node ${s.node_id}, not ${nodeId}` };
  if (s.old_key_id !== body.old_key_id || s.new_key_id !== body.new_key_id || s.new_public_key !== body.new_public_key) return { ok: false, message: 'body and statement disagree' };
  return checkRotation(body, body.old_public_key, backend);
}
