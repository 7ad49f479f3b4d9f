/**
 * Signed agent requests. After enrollment every agent request carries four headers; the signature is Ed25519 by
 * the node key over the canonical JSON of {v, method, path, node_id, timestamp, nonce, body_sha256}.
 * `path` includes the query string. The center rejects a timestamp more than `maxSkewMs` away from its clock and
 * any nonce it has already seen from that node within the window.
 */
import { createHash, randomBytes } from 'node:crypto';
import { signPayload } from './signing.js';
import { fromHex } from './hex.js';
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

/**
 * The canonical JSON bytes of `requestSigningPayload(input)`, written out directly: the payload always has the same
 * seven keys (already in RFC 8785 order here) and string values, whose RFC 8785 form is exactly JSON.stringify's.
 * Same bytes as `canonicalBytes(requestSigningPayload(input))` (a test holds the two together), at a fraction of
 * the cost: the general canonicaliser was a sixth of a heartbeat's CPU at the center.
 */
export function requestSigningBytes(input: RequestSigningInput): Buffer {
  const s = (v: string) => {
    // RFC 8785 has no form for ill-formed UTF-16; the canonicaliser throws on it, and so does this.
    if (!(v as string & { isWellFormed(): boolean }).isWellFormed()) throw new TypeError('Lone surrogate is not allowed');
    return JSON.stringify(v);
  };
  return Buffer.from(
    `{"body_sha256":"${sha256Hex(input.body)}","method":${s(input.method.toUpperCase())},"node_id":${s(input.nodeId)},"nonce":${s(input.nonce)},"path":${s(input.path)},"timestamp":${s(input.timestamp)},"v":1}`,
    'utf8',
  );
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

/** Everything but the Ed25519 verification itself: the exact bytes to verify, decoded once. */
export interface PreparedRequestCheck {
  ok: true;
  publicKey: Uint8Array;
  message: Uint8Array;
  signature: Uint8Array;
}

const NONCE_RE = /^[0-9a-f]{32,64}$/;

function notSigned(): RequestCheck {
  return { ok: false, code: 'BAD_SIGNATURE', message: 'request signature does not verify', mismatch: true };
}

/**
 * The cheap, pure part of checking a signed request: headers present, nonce shape, timestamp inside the window, and
 * the canonical bytes the signature must cover. What it returns is handed to an Ed25519 verifier (inline or on a
 * worker thread); a malformed key or signature is already a failed verification here, not a fault.
 */
export function prepareSignedRequest(
  input: RequestSigningInput & { signature: string },
  publicKeyHex: string,
  nowMs: number,
  maxSkewMs = DEFAULT_MAX_SKEW_MS,
): PreparedRequestCheck | Exclude<RequestCheck, { ok: true }> {
  if (!input.signature || !input.timestamp || !input.nonce || !input.nodeId) {
    return { ok: false, code: 'MISSING_SIGNATURE', message: 'signed request headers are missing' };
  }
  if (!NONCE_RE.test(input.nonce)) return { ok: false, code: 'BAD_SIGNATURE', message: 'nonce must be 32-64 hex characters' };
  const ts = Date.parse(input.timestamp);
  if (!Number.isFinite(ts)) return { ok: false, code: 'BAD_SIGNATURE', message: 'timestamp is not RFC 3339' };
  if (Math.abs(nowMs - ts) > maxSkewMs) {
    return { ok: false, code: 'CLOCK_SKEW', message: `request timestamp is ${Math.round((nowMs - ts) / 1000)} s away from the center's clock (max ${maxSkewMs / 1000} s)` };
  }
  const signature = fromHex(input.signature, 64);
  const publicKey = fromHex(publicKeyHex, 32);
  if (!signature || !publicKey) return notSigned() as Exclude<RequestCheck, { ok: true }>;
  let message: Buffer;
  try {
    message = requestSigningBytes(input);
  } catch {
    return notSigned() as Exclude<RequestCheck, { ok: true }>;
  }
  return { ok: true, publicKey, message, signature };
}

/** The verdict for a prepared check once its signature has (or has not) verified. */
export function signedRequestVerdict(verified: boolean): RequestCheck {
  return verified ? { ok: true } : notSigned();
}

/** Pure check of a signed request against a known public key and clock (nonce reuse is the caller's store). */
export function checkSignedRequest(
  input: RequestSigningInput & { signature: string },
  publicKeyHex: string,
  nowMs: number,
  maxSkewMs = DEFAULT_MAX_SKEW_MS,
  backend: Ed25519Backend = nodeCryptoBackend,
): RequestCheck {
  const prepared = prepareSignedRequest(input, publicKeyHex, nowMs, maxSkewMs);
  if (!prepared.ok) return prepared;
  return signedRequestVerdict(backend.verify(prepared.publicKey, prepared.message, prepared.signature));
}
