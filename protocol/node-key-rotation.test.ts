import { describe, expect, it } from 'vitest';
import { generateKeyPair } from './keys.js';
import { canonicalBytes } from './canonical-json.js';
import { checkNodeKeyBody, checkRotation, nodeKeyBodySchema, NODE_KEY_STATEMENT_TYPE, rotateKeyRequestSchema, signRotation } from './node-key-rotation.js';
import { signPayload } from './signing.js';
import { requestSigningPayload } from './request-signing.js';

const at = new Date('2026-12-03T12:00:00.000Z');

describe('node key rotation statement and proofs', () => {
  const oldKey = generateKeyPair();
  const newKey = generateKeyPair();
  const req = signRotation('node-1', oldKey, newKey, at);

  it('names the node, the old key, the new key and the time, and fits the request schema', () => {
    expect(req.statement).toEqual({ type: NODE_KEY_STATEMENT_TYPE, node_id: 'node-1', old_key_id: oldKey.keyId, new_key_id: newKey.keyId, new_public_key: newKey.publicKeyHex, issued_at: at.toISOString() });
    expect(rotateKeyRequestSchema.parse(JSON.parse(JSON.stringify(req)))).toEqual(req);
    expect(checkRotation(req, oldKey.publicKeyHex)).toEqual({ ok: true });
  });

  it('its signed bytes can never be another signed payload (a request signature or a receipt)', () => {
    const bytes = canonicalBytes(req.statement).toString();
    expect(bytes).toContain(`"type":"${NODE_KEY_STATEMENT_TYPE}"`);
    expect(bytes).not.toBe(canonicalBytes(requestSigningPayload({ method: 'POST', path: '/x', nodeId: 'node-1', timestamp: at.toISOString(), nonce: 'a'.repeat(32), body: '' })).toString());
  });

  it('refuses a proof of possession by another key than the new one', () => {
    const other = generateKeyPair();
    expect(checkRotation({ ...req, new_key_signature: signPayload(req.statement, other) }, oldKey.publicKeyHex)).toMatchObject({ ok: false, message: expect.stringMatching(/proof of possession/) });
  });

  it('refuses an old-key signature by another key, and a statement about another old key', () => {
    const other = generateKeyPair();
    expect(checkRotation({ ...req, old_key_signature: signPayload(req.statement, other) }, oldKey.publicKeyHex)).toMatchObject({ ok: false, message: expect.stringMatching(/old_key_signature/) });
    expect(checkRotation(req, other.publicKeyHex)).toMatchObject({ ok: false, message: expect.stringMatching(/old_key_id/) });
  });

  it('refuses a statement whose new key id is not its key, or whose new key is the old one', () => {
    const wrongId = { ...req.statement, new_key_id: oldKey.keyId };
    expect(checkRotation({ statement: wrongId, new_key_signature: signPayload(wrongId, newKey), old_key_signature: signPayload(wrongId, oldKey) }, oldKey.publicKeyHex)).toMatchObject({ ok: false, message: expect.stringMatching(/not the id/) });
    const same = signRotation('node-1', oldKey, oldKey, at);
    expect(checkRotation(same, oldKey.publicKeyHex)).toMatchObject({ ok: false, message: expect.stringMatching(/current key/) });
  });

  it('a tampered statement fails both signatures', () => {
    const tampered = { ...req, statement: { ...req.statement, issued_at: '2026-12-03T12:00:01.000Z' } };
    expect(checkRotation(tampered, oldKey.publicKeyHex).ok).toBe(false);
  });

  it('a journaled body is re-checked with nothing but itself', () => {
    const body = nodeKeyBodySchema.parse({ action: 'rotate', old_key_id: oldKey.keyId, old_public_key: oldKey.publicKeyHex, new_key_id: newKey.keyId, new_public_key: newKey.publicKeyHex, ...req, old_key_valid_until: '2026-12-03T12:10:00.000Z' });
    expect(checkNodeKeyBody('node-1', body)).toEqual({ ok: true });
    expect(checkNodeKeyBody('node-2', body)).toMatchObject({ ok: false });
    expect(checkNodeKeyBody('node-1', { ...body, old_public_key: generateKeyPair().publicKeyHex }).ok).toBe(false);
  });
});
