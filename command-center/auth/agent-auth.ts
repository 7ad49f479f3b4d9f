/**
 * Authentication of agent requests: the request must be signed by the enrolled key of the node it names
 * (protocol/request-signing.ts), fresh, and not seen before. Unknown nodes get 401, nodes that may not talk
 * (pending, rejected, revoked) 403 with the reason.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { SIGNATURE_HEADERS, prepareSignedRequest, signedRequestVerdict } from '../../protocol/request-signing.js';
import { isVaultMeshError, VaultMeshError } from '../../protocol/errors.js';
import { claimKey, isClaimTaken } from '../store/envelope-store.js';
import { generateKeyPair } from '../../protocol/keys.js';
import type { AppEnv, Services } from '../services.js';
import type { NodeRecord } from '../fleet/fleet-state.js';
import { isWithinOverlap, nodeKeyRotatedError } from '../fleet/node-keys.js';

/** Characters `new URL` leaves as they are in a path and a query (no `%`, `'`, `#`, `\\` or spaces). */
const PLAIN_TARGET = /^\/[A-Za-z0-9\-._~!$&()*+,;=:@/?]*$/;
const DOT_SEGMENT = /\/\.\.?(?:[/?]|$)/;

/**
 * The path and query the signature covers, as `new URL(url)` gives them. A URL of plain characters without dot
 * segments is already in that form, so it is cut out of the string instead of parsed (a parse per signed request);
 * anything else goes through `new URL`, whose normalisation (percent-encoding, dot segments) is the contract.
 */
export function signedPathOf(href: string): string {
  const scheme = href.indexOf('://');
  const slash = scheme < 0 ? -1 : href.indexOf('/', scheme + 3);
  if (slash > 0) {
    const target = href.slice(slash);
    // A bare `?` (empty query) is dropped by `new URL`: parse that case.
    if (PLAIN_TARGET.test(target) && !DOT_SEGMENT.test(target) && !target.endsWith('?')) return target;
  }
  const url = new URL(href);
  return url.pathname + url.search;
}

export function signedPath(c: Context): string {
  return signedPathOf(c.req.url);
}

/**
 * One answer for "no such node" and "not this node's key": telling them apart would let anyone list enrolled node
 * ids with forged signatures. A node that is really unknown (or a clone with its own key) re-enrolls on this code.
 */
function unknownNode(nodeId: string): VaultMeshError {
  return new VaultMeshError('UNKNOWN_NODE', `no node ${JSON.stringify(nodeId.slice(0, 64))} is enrolled with the key that signed this request`, { status: 401 });
}

// Nobody holds its private half: a key no request can be signed for.
const NO_KEY = generateKeyPair().publicKeyHex;

/**
 * Verifies the signature headers against `publicKeyHex`. Throws 401 on any failure; a well-formed, fresh request
 * that is not signed by that key throws `mismatch()` (BAD_SIGNATURE unless the caller says otherwise). The nonce is
 * recorded separately (`rememberNonce`), so a caller can check cheaper preconditions (a join token) before an
 * unauthenticated request may take memory. The cheap checks and the canonical bytes are done here; only the Ed25519
 * verification itself goes to `services.verifier` (a worker thread when there are any).
 */
export async function verifyAgentSignature(
  c: Context<AppEnv>,
  services: Services,
  nodeId: string,
  publicKeyHex: string,
  body: Buffer,
  mismatch?: () => VaultMeshError,
): Promise<void> {
  const nowMs = services.now().getTime();
  const timestamp = c.req.header(SIGNATURE_HEADERS.timestamp) ?? '';
  const prepared = prepareSignedRequest(
    {
      method: c.req.method,
      path: signedPath(c),
      nodeId,
      timestamp,
      nonce: c.req.header(SIGNATURE_HEADERS.nonce) ?? '',
      body,
      signature: c.req.header(SIGNATURE_HEADERS.signature) ?? '',
    },
    publicKeyHex,
    nowMs,
    services.config.maxSkewSecs * 1000,
  );
  const check = prepared.ok ? signedRequestVerdict(await services.verifier.verify(prepared.publicKey, prepared.message, prepared.signature)) : prepared;
  if (!check.ok) throw check.mismatch && mismatch ? mismatch() : new VaultMeshError(check.code, check.message, { status: 401 });
  // The replay guard lives in memory: a request signed before this process started may have been accepted by the
  // previous one, so it is refused. Agents sign every attempt afresh, so they recover on their next try.
  const signedAt = Date.parse(timestamp);
  if (signedAt < services.startedAt.getTime()) {
    throw new VaultMeshError('CLOCK_SKEW', 'request was signed before the center started (replay protection across restarts): sign it again', { status: 401 });
  }
}

const replayed = () => new VaultMeshError('REPLAYED_REQUEST', 'this request nonce was already used', { status: 401 });

/**
 * Records the request nonce; a second use inside the acceptance window is a replay (401). With replicas the nonce
 * is also claimed in the shared store, so the same request sent to another replica is refused there too; the claim
 * lasts as long as the memory entry (twice the skew window) and is then pruned.
 */
export async function rememberNonce(c: Context<AppEnv>, services: Services, nodeId: string): Promise<void> {
  const nonce = c.req.header(SIGNATURE_HEADERS.nonce)!;
  const nowMs = services.now().getTime();
  if (!services.replayGuard.remember(nodeId, nonce, nowMs)) throw replayed();
  if (!services.replicated) return;
  try {
    await services.claim([{ key: claimKey('nonce', nodeId, nonce), expiresAtMs: nowMs + 2 * services.config.maxSkewSecs * 1000 }]);
  } catch (err) {
    throw isClaimTaken(err) ? replayed() : err;
  }
}

/**
 * Runs `lookup` and, on a replica, once more after catching up with the log when it answers with one of `codes`:
 * the node may have enrolled (or been approved, or its token been created) on another replica a moment ago.
 */
export async function withCatchUp<T>(services: Services, codes: readonly string[], lookup: () => T | Promise<T>): Promise<T> {
  try {
    return await lookup();
  } catch (err) {
    if (!services.replicated || !isVaultMeshError(err) || !codes.includes(err.code)) throw err;
    await services.syncLog();
    return lookup();
  }
}

/**
 * A request that did not verify under the node's current key, tried against the keys the node rotated away from:
 * inside its overlap window a replaced key still signs (requests in flight while the agent swapped keys); after it
 * the answer is NODE_KEY_ROTATED, which names the successor, instead of a bare UNKNOWN_NODE. Only the holder of a
 * replaced key learns this, so it tells nobody else which node ids exist.
 */
async function verifyReplacedKey(c: Context<AppEnv>, services: Services, node: NodeRecord, body: Buffer): Promise<string | undefined> {
  const keys = node.replaced_keys ?? [];
  const mismatch = new VaultMeshError('BAD_SIGNATURE', 'not this key', { status: 401 });
  for (let i = keys.length - 1; i >= 0; i--) {
    const k = keys[i]!;
    try {
      await verifyAgentSignature(c, services, node.node_id, k.public_key, body, () => mismatch);
    } catch (err) {
      if (err === mismatch) continue;
      throw err;
    }
    if (!isWithinOverlap(k, services.now().getTime())) throw nodeKeyRotatedError(node.node_id, k);
    return k.key_id;
  }
  return undefined;
}

/**
 * Checks that the request is signed by the key (current, or replaced and inside its overlap window) of an enrolled,
 * approved node, and records its nonce. Returns the node id and the key id that verified.
 */
export async function authenticateNode(c: Context<AppEnv>, services: Services, body: Buffer): Promise<{ nodeId: string; keyId: string }> {
  const nodeId = c.req.header(SIGNATURE_HEADERS.node);
  if (!nodeId || !c.req.header(SIGNATURE_HEADERS.signature)) {
    throw new VaultMeshError('MISSING_SIGNATURE', 'agent requests must be signed (x-vm-node, x-vm-timestamp, x-vm-nonce, x-vm-signature)', { status: 401 });
  }
  const verified = async (): Promise<string> => {
    // An unknown node is verified against a throw-away key: same checks, same work, same answer as a forgery.
    const known = services.state.nodes.get(nodeId);
    const verifiedKey = known?.public_key ?? NO_KEY;
    try {
      await verifyAgentSignature(c, services, nodeId, verifiedKey, body, () => unknownNode(nodeId));
    } catch (err) {
      if (!known?.replaced_keys?.length || !isVaultMeshError(err) || err.code !== 'UNKNOWN_NODE') throw err;
      const replaced = await verifyReplacedKey(c, services, known, body);
      if (replaced === undefined) throw err;
      return replaced;
    }
    // The check may have waited for a worker thread: judge the node as it is now, and only while its key is still
    // the one that verified (a re-enrollment in between replaces it; a rotation keeps it valid for its window).
    const node = services.state.nodes.get(nodeId);
    if (!node) throw unknownNode(nodeId);
    if (node.public_key === verifiedKey) return node.key_id;
    const r = node.replaced_keys?.find((k) => k.public_key === verifiedKey);
    if (!r) throw unknownNode(nodeId);
    if (!isWithinOverlap(r, services.now().getTime())) throw nodeKeyRotatedError(nodeId, r);
    return r.key_id;
  };
  // Enrolled or rotated a moment ago on another replica: catch up once before refusing.
  const keyId = await withCatchUp(services, ['UNKNOWN_NODE', 'NODE_KEY_ROTATED'], verified);
  await rememberNonce(c, services, nodeId);
  const approved = () => {
    const n = services.state.nodes.get(nodeId)!;
    if (n.enrollment === 'approved') return;
    const code = n.enrollment === 'pending' ? 'NODE_PENDING' : n.enrollment === 'revoked' ? 'NODE_REVOKED' : 'NODE_REJECTED';
    throw new VaultMeshError(code, `node ${nodeId} is ${n.enrollment}${n.enrollment === 'pending' ? ': waiting for operator approval' : ''}`, { status: 403 });
  };
  // Approved a moment ago on another replica: catch up once before refusing.
  await withCatchUp(services, ['NODE_PENDING'], approved);
  return { nodeId, keyId };
}

/** For every agent route after enrollment: sets `nodeId`, `signingKeyId` and `rawBody` for the handler. */
export function requireEnrolledNode(): MiddlewareHandler<AppEnv> {
  return async function requireEnrolledNode(c, next) {
    const services = c.get('services');
    if (!c.req.header(SIGNATURE_HEADERS.node) || !c.req.header(SIGNATURE_HEADERS.signature)) {
      throw new VaultMeshError('MISSING_SIGNATURE', 'agent requests must be signed (x-vm-node, x-vm-timestamp, x-vm-nonce, x-vm-signature)', { status: 401 });
    }
    const body = Buffer.from(await c.req.arrayBuffer());
    const { nodeId, keyId } = await authenticateNode(c, services, body);
    c.set('nodeId', nodeId);
    c.set('signingKeyId', keyId);
    c.set('rawBody', body);
    await next();
  };
}
