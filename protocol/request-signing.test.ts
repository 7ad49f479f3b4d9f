import { describe, expect, it } from 'vitest';
import { canonicalBytes } from './canonical-json.js';
import { generateKeyPair } from './keys.js';
import { checkSignedRequest, prepareSignedRequest, requestSigningBytes, requestSigningPayload, signRequest } from './request-signing.js';

describe('request signing bytes', () => {
  const cases = [
    { method: 'post', path: '/api/agent/heartbeat', nodeId: 'n1', timestamp: '2026-01-01T00:00:00.000Z', nonce: 'ab'.repeat(16), body: '{"a":1}' },
    { method: 'GET', path: '/api/agent/commands?wait=25&x="q"\\', nodeId: 'nœud-ü-\u2028-\u0007', timestamp: 'not a date', nonce: '', body: Buffer.from([0, 1, 2, 255]) },
    { method: 'PoSt', path: '/p/\ud83d\ude00/\u007f/\t', nodeId: '"quoted"', timestamp: '2026-12-03T13:00:00Z', nonce: 'x'.repeat(64), body: '' },
  ];
  it.each(cases.map((c, i) => [i, c] as const))('case %i: the direct writer gives exactly the canonicaliser’s bytes', (_i, input) => {
    expect(requestSigningBytes(input).equals(canonicalBytes(requestSigningPayload(input)))).toBe(true);
  });

  it('refuses ill-formed UTF-16 exactly as the canonicaliser does', () => {
    const input = { method: 'POST', path: '/lone/\ud800/surrogate', nodeId: 'n1', timestamp: 't', nonce: 'n', body: 'é' };
    expect(() => canonicalBytes(requestSigningPayload(input))).toThrow();
    expect(() => requestSigningBytes(input)).toThrow(TypeError);
    expect(() => requestSigningBytes({ ...input, path: '/', nodeId: 'n\udfff' })).toThrow(TypeError);
  });
});

describe('prepareSignedRequest', () => {
  const key = generateKeyPair();
  const now = Date.parse('2026-06-01T12:00:00.000Z');
  const req = { method: 'POST', path: '/api/agent/heartbeat', nodeId: 'n1', body: '{"node_id":"n1"}' };
  const headers = signRequest(req, key, { now: () => new Date(now) });
  const input = { ...req, timestamp: headers['x-vm-timestamp']!, nonce: headers['x-vm-nonce']!, signature: headers['x-vm-signature']! };

  it('hands back the canonical bytes and decoded key and signature of a good request', () => {
    const p = prepareSignedRequest(input, key.publicKeyHex, now);
    if (!p.ok) throw new Error(p.message);
    expect(Buffer.from(p.message).equals(canonicalBytes(requestSigningPayload(input)))).toBe(true);
    expect(Buffer.from(p.publicKey).toString('hex')).toBe(key.publicKeyHex);
    expect(Buffer.from(p.signature).toString('hex')).toBe(input.signature);
    expect(checkSignedRequest(input, key.publicKeyHex, now)).toEqual({ ok: true });
  });

  it('refuses the cheap failures before any verification, as checkSignedRequest always did', () => {
    expect(prepareSignedRequest({ ...input, signature: '' }, key.publicKeyHex, now)).toMatchObject({ ok: false, code: 'MISSING_SIGNATURE' });
    expect(prepareSignedRequest({ ...input, nonce: 'zz' }, key.publicKeyHex, now)).toMatchObject({ ok: false, code: 'BAD_SIGNATURE' });
    expect(prepareSignedRequest(input, key.publicKeyHex, now + 301_000)).toMatchObject({ ok: false, code: 'CLOCK_SKEW' });
    expect(prepareSignedRequest({ ...input, signature: 'ab' }, key.publicKeyHex, now)).toMatchObject({ ok: false, code: 'BAD_SIGNATURE', mismatch: true });
    expect(prepareSignedRequest(input, 'not hex', now)).toMatchObject({ ok: false, code: 'BAD_SIGNATURE', mismatch: true });
  });

  it('a tampered body or another key does not verify', () => {
    expect(checkSignedRequest({ ...input, body: '{"node_id":"n2"}' }, key.publicKeyHex, now)).toMatchObject({ ok: false, code: 'BAD_SIGNATURE', mismatch: true });
    expect(checkSignedRequest(input, generateKeyPair().publicKeyHex, now)).toMatchObject({ ok: false, code: 'BAD_SIGNATURE', mismatch: true });
  });
});
