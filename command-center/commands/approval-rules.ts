/**
 * The rules of m-of-n approval, pure: who may approve or deny a proposed command, when the threshold is met, and
 * which decision slot a decision takes. A proposal's decisions are numbered (approval 1, 2, … then the deny, the
 * expiry or the approval that issues it); with several replicas each decision claims its slot, so two decisions
 * made at once on the same state cannot both be journaled (the loser catches up and decides again).
 */
import type { CommandApproval } from '../../protocol/center-events.js';
import { claimKey } from '../store/envelope-store.js';

export interface Proposal {
  proposed_by: string;
  proposed_at: string;
  proposed_seq: number;
  /** Distinct approvals needed, the proposer never counting. */
  required: number;
  /** The signed command's lifetime once issued. */
  ttl_secs: number;
  /** When the proposal lapses unless approved. */
  expires_at: string;
  /** In order; once issued the last one carries the `issued` envelope's seq. */
  approvals: CommandApproval[];
  denied?: { by: string; at: string; seq: number; reason?: string };
}

export type ProposalState = 'proposed' | 'queued' | 'delivered' | 'running' | 'succeeded' | 'failed' | 'expired' | 'rejected' | 'denied' | 'proposal_expired';

export type DecisionRefusal = 'SELF_APPROVAL' | 'ALREADY_APPROVED' | 'PROPOSAL_EXPIRED' | 'PROPOSAL_CLOSED';

export type Decision =
  | { ok: true; slot: number; /** approve only: this approval meets the threshold, so it signs and queues the command */ issues: boolean }
  | { ok: false; code: DecisionRefusal; status: 403 | 409; message: string };

/**
 * The identities of whoever runs the host: the admin token (operator-auth.ts) and the admin socket (local-admin.ts).
 * One person holds both, so for approvals they are one operator; otherwise that person could propose with one and
 * approve with the other.
 */
export const HOST_ADMIN_IDENTITIES: ReadonlySet<string> = new Set(['admin', 'local-admin']);

/** Who an identity is for the rules of approval: the host's two admin identities are the same operator. */
export function approverOf(who: string): string {
  return HOST_ADMIN_IDENTITIES.has(who) ? 'host admin' : who;
}

/** Whether the proposal is past its expiry at `nowMs` (whether or not the sweep has journaled it yet). */
export function proposalLapsed(p: Proposal, nowMs: number): boolean {
  return nowMs >= Date.parse(p.expires_at);
}

/**
 * May `who` approve or deny this command now? A deny is allowed to anyone who may approve, the proposer included
 * (withdrawing it), and to an operator who approved earlier (changing their mind before it is signed).
 */
export function decide(rec: { id: string; status: string; proposal?: Proposal }, who: string, kind: 'approve' | 'deny', nowMs: number): Decision {
  const p = rec.proposal;
  if (!p) return { ok: false, code: 'PROPOSAL_CLOSED', status: 409, message: `command ${rec.id} did not need approval (it is ${rec.status})` };
  if (rec.status === 'denied') return { ok: false, code: 'PROPOSAL_CLOSED', status: 409, message: `command ${rec.id} was denied by ${p.denied?.by ?? 'an operator'}` };
  if (rec.status === 'proposal_expired') return { ok: false, code: 'PROPOSAL_EXPIRED', status: 409, message: `the proposal of command ${rec.id} expired at ${p.expires_at}` };
  if (rec.status !== 'proposed') return { ok: false, code: 'PROPOSAL_CLOSED', status: 409, message: `command ${rec.id} was already approved and issued (it is ${rec.status})` };
  if (proposalLapsed(p, nowMs)) return { ok: false, code: 'PROPOSAL_EXPIRED', status: 409, message: `the proposal of command ${rec.id} expired at ${p.expires_at}` };
  const slot = p.approvals.length + 1;
  if (kind === 'deny') return { ok: true, slot, issues: false };
  const me = approverOf(who);
  const sameHost = HOST_ADMIN_IDENTITIES.has(who) ? ' (the admin token and the admin socket are one operator)' : '';
  if (me === approverOf(p.proposed_by)) return { ok: false, code: 'SELF_APPROVAL', status: 403, message: `you proposed command ${rec.id}: another operator must approve it${sameHost}` };
  if (p.approvals.some((a) => approverOf(a.by) === me)) return { ok: false, code: 'ALREADY_APPROVED', status: 409, message: `you already approved command ${rec.id} (${p.approvals.length} of ${p.required})${sameHost}` };
  return { ok: true, slot, issues: slot >= p.required };
}

/** The claim a decision in `slot` takes with its envelope (replicas: one decision per slot, whichever replica). */
export const decisionClaim = (commandId: string, slot: number): string => claimKey('command-decision', commandId, slot);
