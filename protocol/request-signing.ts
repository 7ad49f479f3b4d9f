/**
 * Signed agent requests. After enrollment every agent request carries four headers; the signature is Ed25519 by
 * the node key over the canonical JSON of {v, method, path, node_id, timestamp, nonce, body_sha256}.
 * `path` includes the query string. The center rejects a timestamp more than `maxSkewMs` away from its clock and
 * any nonce it has already seen from that node within the window.
 */
import { createHash, randomBytes } from 'node:crypto';
import { signPayload, verifyPayload } from './signing.js';
import type { KeyPair } from './keys.js';
import { nodeCryptoBackend, type Ed25519Backend } from './ed25519.js';

export const SIGNATURE_HEADERS = {
  node: 'x-vm-node',
  timestamp: 'x-vm-timestamp',
  nonce: 'x-vm-nonce',
  signature: 'x-vm-signature',
} as const;

export const DEFAULT_MAX_SKEW_MS = 5 * 60 * 1000;

export interface RequestSigningInput {
  method: string;
  path: string;
  nodeId: string;
  timestamp: string;
  nonce: string;
  body: Uint8Array | string;
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The exact object whose canonical bytes are signed. */
export function requestSigningPayload(input: RequestSigningInput): Record<string, unknown> {
  return {
    v: 1,
    method: input.method.toUpperCase(),
    path: input.path,
    node_id: input.nodeId,
    timestamp: input.timestamp,
    nonce: input.nonce,
    body_sha256: sha256Hex(input.body),
  };
}

export function signRequest(
  req: { method: string; path: string; nodeId: string; body: Uint8Array | string },
  key: Pick<KeyPair, 'seed'>,
  opts: { now?: () => Date; random?: (n: number) => Uint8Array; backend?: Ed25519Backend } = {},
): Record<string, string> {
  const timestamp = (opts.now ?? (() => new Date()))().toISOString();
  const nonce = Buffer.from((opts.random ?? randomBytes)(16)).toString('hex');
  const signature = signPayload(requestSigningPayload({ ...req, timestamp, nonce }), key, opts.backend ?? nodeCryptoBackend);
  return {
    [SIGNATURE_HEADERS.node]: req.nodeId,
    [SIGNATURE_HEADERS.timestamp]: timestamp,
    [SIGNATURE_HEADERS.nonce]: nonce,
    [SIGNATURE_HEADERS.signature]: signature,
  };
}

export type RequestCheck =
  | { ok: true }
  | { ok: false; code: 'MISSING_SIGNATURE' | 'BAD_SIGNATURE' | 'CLOCK_SKEW'; message: string; /** well-formed and fresh, but not signed by this key */ mismatch?: true };

/** Pure check of a signed request against a known public key and clock (nonce reuse is the caller's store). */
export function checkSignedRequest(
  input: RequestSigningInput & { signature: string },
  publicKeyHex: string,
  nowMs: number,
  maxSkewMs = DEFAULT_MAX_SKEW_MS,
  backend: Ed25519Backend = nodeCryptoBackend,
): RequestCheck {
  if (!input.signature || !input.timestamp || !input.nonce || !input.nodeId) {
    return { ok: false, code: 'MISSING_SIGNATURE', message: 'signed request headers are missing' };
  }
  if (!/^[0-9a-f]{32,64}$/.test(input.nonce)) return { ok: false, code: 'BAD_SIGNATURE', message: 'nonce must be 32-64 hex characters' };
  const ts = Date.parse(input.timestamp);
  if (!Number.isFinite(ts)) return { ok: false, code: 'BAD_SIGNATURE', message: 'timestamp is not RFC 3339' };
  if (Math.abs(nowMs - ts) > maxSkewMs) {
    return { ok: false, code: 'CLOCK_SKEW', message: `request timestamp is ${Math.round((nowMs - ts) / 1000)} s away from the center's clock (max ${maxSkewMs / 1000} s)` };
  }
  if (!verifyPayload(requestSigningPayload(input), input.signature, publicKeyHex, backend)) {
    return { ok: false, code: 'BAD_SIGNATURE', message: 'request signature does not verify', mismatch: true };
  }
  return { ok: true };
}
