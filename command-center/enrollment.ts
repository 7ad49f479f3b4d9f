/**
 * Pure enrollment decisions: whether a join token admits a node, or whether the node is already known under the
 * same key (a retry, answered with its current status without spending another token use).
 */
import type { EnrollRequest } from '../protocol/agent-api.js';
import { VaultMeshError } from '../protocol/errors.js';
import type { FleetState } from './fleet-state.js';
import { hashSecret } from './secrets.js';

export type EnrollmentDecision = { kind: 'existing'; status: string } | { kind: 'new'; tokenId: string };

export function decideEnrollment(state: FleetState, req: EnrollRequest, now: Date): EnrollmentDecision {
  const existing = state.nodes.get(req.node_id);
  if (existing && (existing.enrollment === 'pending' || existing.enrollment === 'approved')) {
    if (existing.public_key === req.public_key) return { kind: 'existing', status: existing.enrollment };
    throw new VaultMeshError('NODE_EXISTS', `node ${req.node_id} is already enrolled with another key; revoke it first`, { status: 409 });
  }
  const tokenId = state.joinTokenByHash.get(hashSecret(req.token));
  const token = tokenId ? state.joinTokens.get(tokenId) : undefined;
  if (!token) throw new VaultMeshError('BAD_JOIN_TOKEN', 'join token is not valid', { status: 401 });
  if (token.revoked) throw new VaultMeshError('JOIN_TOKEN_REVOKED', 'join token was revoked', { status: 401 });
  if (Date.parse(token.expires_at) <= now.getTime()) throw new VaultMeshError('JOIN_TOKEN_EXPIRED', `join token expired at ${token.expires_at}`, { status: 401 });
  if (token.used >= token.uses) throw new VaultMeshError('JOIN_TOKEN_USED_UP', `join token was already used ${token.used} of ${token.uses} times`, { status: 401 });
  return { kind: 'new', tokenId: token.token_id };
}
