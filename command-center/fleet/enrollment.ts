/**
 * Pure enrollment decisions: whether a join token admits a node, or whether the node is already known under the
 * same key (a retry, answered with its current status without spending another token use).
 */
import type { EnrollRequest } from '../../protocol/agent-api.js';
import { VaultMeshError } from '../../protocol/errors.js';
import type { FleetState, NodeRecord } from './fleet-state.js';
import { claimKey } from '../store/envelope-store.js';
import { hashSecret } from '../auth/secrets.js';
import { keyIdOf } from '../../protocol/keys.js';

export type EnrollmentDecision = { kind: 'existing'; status: string } | { kind: 'new'; tokenId: string };

export function decideEnrollment(state: FleetState, req: EnrollRequest, now: Date): EnrollmentDecision {
  // The token comes first: whether a node id is taken is told only to someone holding a real join token.
  const tokenId = state.joinTokenByHash.get(hashSecret(req.token));
  const token = tokenId ? state.joinTokens.get(tokenId) : undefined;
  if (!token) throw new VaultMeshError('BAD_JOIN_TOKEN', 'join token is not valid', { status: 401 });
  const existing = state.nodes.get(req.node_id);
  const holds = existing && (existing.enrollment === 'pending' || existing.enrollment === 'approved');
  // A retry by the node that spent the token is answered with its status, even once the token is used up.
  if (holds && existing.public_key === req.public_key) return { kind: 'existing', status: existing.enrollment };
  if (token.revoked) throw new VaultMeshError('JOIN_TOKEN_REVOKED', 'join token was revoked', { status: 401 });
  if (Date.parse(token.expires_at) <= now.getTime()) throw new VaultMeshError('JOIN_TOKEN_EXPIRED', `join token expired at ${token.expires_at}`, { status: 401 });
  if (token.used >= token.uses) throw new VaultMeshError('JOIN_TOKEN_USED_UP', `join token was already used ${token.used} of ${token.uses} times`, { status: 401 });
  if (holds) {
    throw new VaultMeshError(
      'NODE_EXISTS',
      `node id ${req.node_id} is already enrolled with key ${keyIdOf(existing.public_key)}, and this agent's key is ${keyIdOf(req.public_key)}: ` +
        `if this machine was cloned from that node, give it its own id (VAULTMESH_NODE_ID or --node-id); if it replaces that node, revoke the old one first (vaultmesh nodes revoke ${req.node_id})`,
      { status: 409 },
    );
  }
  return { kind: 'new', tokenId: token.token_id };
}

/** The n-th use of a join token: claimed once across replicas, so a token is never used more than `uses` times. */
export const joinTokenUseClaim = (tokenId: string, use: number): string => claimKey('join-token-use', tokenId, use);

/**
 * One enrollment per node id and generation: the generation is the node as this replica knows it (none yet, or its
 * enrollment time and status), so two replicas enrolling the same node from the same state claim the same key.
 */
export const enrollmentClaim = (nodeId: string, node: NodeRecord | undefined): string =>
  claimKey('enrollment', nodeId, node ? `${node.enrolled_at} ${node.enrollment}` : 'new');

/** An operator decision on one enrollment state: of two replicas deciding on the same state, one wins. */
export const enrollmentDecisionClaim = (nodeId: string, node: NodeRecord): string => claimKey('enrollment-decision', nodeId, `${node.enrolled_at} ${node.enrollment}`);
