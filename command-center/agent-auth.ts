/**
 * Authentication of agent requests: the request must be signed by the enrolled key of the node it names
 * (protocol/request-signing.ts), fresh, and not seen before. Unknown nodes get 401, nodes that may not talk
 * (pending, rejected, revoked) 403 with the reason.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { SIGNATURE_HEADERS, checkSignedRequest } from '../protocol/request-signing.js';
import { VaultMeshError } from '../protocol/errors.js';
import type { AppEnv, Services } from './services.js';

export function signedPath(c: Context): string {
  const url = new URL(c.req.url);
  return url.pathname + url.search;
}

/** Verifies the signature headers against `publicKeyHex`, then records the nonce. Throws 401 on any failure. */
export function verifyAgentSignature(c: Context<AppEnv>, services: Services, nodeId: string, publicKeyHex: string, body: Buffer): void {
  const nowMs = services.now().getTime();
  const check = checkSignedRequest(
    {
      method: c.req.method,
      path: signedPath(c),
      nodeId,
      timestamp: c.req.header(SIGNATURE_HEADERS.timestamp) ?? '',
      nonce: c.req.header(SIGNATURE_HEADERS.nonce) ?? '',
      body,
      signature: c.req.header(SIGNATURE_HEADERS.signature) ?? '',
    },
    publicKeyHex,
    nowMs,
    services.config.maxSkewSecs * 1000,
  );
  if (!check.ok) throw new VaultMeshError(check.code, check.message, { status: 401 });
  if (!services.replayGuard.remember(nodeId, c.req.header(SIGNATURE_HEADERS.nonce)!, nowMs)) {
    throw new VaultMeshError('REPLAYED_REQUEST', 'this request nonce was already used', { status: 401 });
  }
}

/** For every agent route after enrollment: sets `nodeId` and `rawBody` for the handler. */
export function requireEnrolledNode(): MiddlewareHandler<AppEnv> {
  return async function requireEnrolledNode(c, next) {
    const services = c.get('services');
    const nodeId = c.req.header(SIGNATURE_HEADERS.node);
    if (!nodeId || !c.req.header(SIGNATURE_HEADERS.signature)) {
      throw new VaultMeshError('MISSING_SIGNATURE', 'agent requests must be signed (x-vm-node, x-vm-timestamp, x-vm-nonce, x-vm-signature)', { status: 401 });
    }
    const node = services.state.nodes.get(nodeId);
    if (!node) throw new VaultMeshError('UNKNOWN_NODE', `node ${JSON.stringify(nodeId.slice(0, 64))} is not enrolled`, { status: 401 });
    const body = Buffer.from(await c.req.arrayBuffer());
    verifyAgentSignature(c, services, nodeId, node.public_key, body);
    if (node.enrollment !== 'approved') {
      const code = node.enrollment === 'pending' ? 'NODE_PENDING' : node.enrollment === 'revoked' ? 'NODE_REVOKED' : 'NODE_REJECTED';
      throw new VaultMeshError(code, `node ${nodeId} is ${node.enrollment}${node.enrollment === 'pending' ? ': waiting for operator approval' : ''}`, { status: 403 });
    }
    c.set('nodeId', nodeId);
    c.set('rawBody', body);
    await next();
  };
}
