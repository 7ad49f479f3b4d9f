import { describe, expect, it } from 'vitest';
import {
  boundOutput,
  createCommandPayload,
  signCommand,
  signReceipt,
  verifyCommand,
  verifyReceipt,
  type SignedCommand,
  type VerifyContext,
  type VerifyCode,
} from './command.js';
import { keyPairFromSeed } from './keys.js';
import { nodeCryptoBackend } from './ed25519.js';
import { nobleBackend } from './ed25519-noble.js';

const center = keyPairFromSeed(new Uint8Array(32).fill(7));
const other = keyPairFromSeed(new Uint8Array(32).fill(9));
const node = keyPairFromSeed(new Uint8Array(32).fill(3));
const NOW = Date.parse('2026-01-01T12:00:00.000Z');
const NONCE = 'ab'.repeat(16);

function cmd(over: Partial<Parameters<typeof createCommandPayload>[0]> = {}, key = center): SignedCommand {
  const payload = createCommandPayload({ id: 'cmd-1', nodeId: 'web-01', action: 'ping', args: {}, nonce: NONCE, now: new Date(NOW), keyId: key.keyId, ...over });
  return signCommand(payload, key);
}

function ctx(over: Partial<VerifyContext> = {}): VerifyContext {
  return {
    nodeId: 'web-01',
    pinnedKeys: { [center.keyId]: center.publicKeyHex },
    nowMs: NOW + 1000,
    maxSkewMs: 60_000,
    nonceSeen: () => false,
    allowedActions: ['ping', 'service-status'],
    ...over,
  };
}

const flip = (hex: string, i = 0) => hex.slice(0, i) + (hex[i] === '0' ? '1' : '0') + hex.slice(i + 1);

describe('verifyCommand', () => {
  const table: Array<[string, () => unknown, Partial<VerifyContext>, VerifyCode | 'ok']> = [
    ['a valid command', () => cmd(), {}, 'ok'],
    ['valid at the last millisecond', () => cmd(), { nowMs: NOW + 5 * 60_000 }, 'ok'],
    ['issued slightly in the future, within skew', () => cmd(), { nowMs: NOW - 59_000 }, 'ok'],
    ['not an object', () => 'ping', {}, 'MALFORMED'],
    ['missing signature', () => ({ ...cmd(), signature: undefined }), {}, 'MALFORMED'],
    ['short nonce (<128 bits)', () => cmd({ nonce: 'ab'.repeat(8) }), {}, 'MALFORMED'],
    ['extra payload field', () => ({ ...cmd(), payload: { ...cmd().payload, shell: 'rm -rf /' } }), {}, 'MALFORMED'],
    ['uppercase signature hex', () => ({ ...cmd(), signature: cmd().signature.toUpperCase() }), {}, 'MALFORMED'],
    ['outer and payload key_id differ', () => ({ ...cmd(), key_id: other.keyId }), {}, 'MALFORMED'],
    ['expires before issued', () => cmd({ ttlMs: -1000 }), {}, 'MALFORMED'],
    ['lifetime over 24 h', () => cmd({ ttlMs: 25 * 3600_000 }), {}, 'MALFORMED'],
    ['tampered payload (action)', () => ({ ...cmd(), payload: { ...cmd().payload, action: 'service-status' } }), {}, 'BAD_SIGNATURE'],
    ['tampered payload (args)', () => ({ ...cmd(), payload: { ...cmd().payload, args: { unit: 'x' } } }), {}, 'BAD_SIGNATURE'],
    ['tampered payload (expires_at)', () => ({ ...cmd(), payload: { ...cmd().payload, expires_at: '2026-01-01T13:00:00.000Z' } }), {}, 'BAD_SIGNATURE'],
    ['tampered signature', () => ({ ...cmd(), signature: flip(cmd().signature, 10) }), {}, 'BAD_SIGNATURE'],
    ['signature of another message', () => ({ ...cmd(), signature: cmd({ id: 'cmd-2' }).signature }), {}, 'BAD_SIGNATURE'],
    ['signed by an unpinned key', () => cmd({}, other), {}, 'UNKNOWN_KEY'],
    ['unpinned key claiming a pinned key_id', () => ({ ...cmd({}, other), key_id: center.keyId, payload: { ...cmd({}, other).payload, key_id: center.keyId } }), {}, 'BAD_SIGNATURE'],
    ['for another node', () => cmd({ nodeId: 'web-02' }), {}, 'WRONG_NODE'],
    ['expired', () => cmd(), { nowMs: NOW + 5 * 60_000 + 1 }, 'EXPIRED'],
    ['not yet valid (beyond skew)', () => cmd(), { nowMs: NOW - 61_000 }, 'NOT_YET_VALID'],
    ['nonce seen before', () => cmd(), { nonceSeen: (n) => n === NONCE }, 'NONCE_REUSED'],
    ['action not allowed here', () => cmd({ action: 'service-restart', args: { unit: 'nginx.service' } }), {}, 'ACTION_NOT_ALLOWED'],
    ['unknown action', () => cmd({ action: 'shell' }), {}, 'ACTION_NOT_ALLOWED'],
    ['allowed actions as a Set', () => cmd(), { allowedActions: new Set(['ping']) }, 'ok'],
    ['with the noble backend', () => cmd(), { backend: nobleBackend }, 'ok'],
    ['tampered, noble backend', () => ({ ...cmd(), signature: flip(cmd().signature, 5) }), { backend: nobleBackend }, 'BAD_SIGNATURE'],
  ];
  it.each(table)('%s → %s', (_name, make, over, expected) => {
    const r = verifyCommand(make(), ctx(over));
    if (expected === 'ok') expect(r).toMatchObject({ ok: true });
    else expect(r).toMatchObject({ ok: false, code: expected });
  });

  it('does not consult the nonce store for unauthentic commands', () => {
    let asked = 0;
    verifyCommand({ ...cmd(), signature: flip(cmd().signature) }, ctx({ nonceSeen: () => (asked++, false) }));
    expect(asked).toBe(0);
  });

  it('both backends produce the same signature (Ed25519 is deterministic)', () => {
    const p = cmd().payload;
    expect(signCommand(p, center, nobleBackend).signature).toBe(signCommand(p, center, nodeCryptoBackend).signature);
  });
});

describe('receipts', () => {
  const payload = {
    v: 1 as const,
    command_id: 'cmd-1',
    node_id: 'web-01',
    status: 'succeeded' as const,
    exit_code: 0,
    started_at: '2026-01-01T12:00:01.000Z',
    finished_at: '2026-01-01T12:00:01.005Z',
    output: 'pong',
    truncated: false,
  };
  it('verifies under the node key only, and not after tampering', () => {
    const r = signReceipt(payload, node);
    expect(r.key_id).toBe(node.keyId);
    expect(verifyReceipt(r, node.publicKeyHex)).toBe(true);
    expect(verifyReceipt(r, node.publicKeyHex, nobleBackend)).toBe(true);
    expect(verifyReceipt(r, center.publicKeyHex)).toBe(false);
    expect(verifyReceipt({ ...r, payload: { ...payload, status: 'failed' } }, node.publicKeyHex)).toBe(false);
  });
});

describe('boundOutput', () => {
  it.each([
    ['short', 'pong', 10, 'pong', false],
    ['exact', 'abcd', 4, 'abcd', false],
    ['ascii cut', 'abcdef', 4, 'abcd', true],
    ['never splits a character', 'aé€', 4, 'aé', true],
    ['4-byte char', '😀😀', 5, '😀', true],
  ])('%s', (_n, text, max, out, truncated) => {
    expect(boundOutput(text, max)).toEqual({ output: out, truncated });
  });
});
