/**
 * Operator decisions on an enrollment (approve, reject, revoke), shared by the operator API and the console so both
 * check the same state rules and journal the same envelope.
 */
import { VaultMeshError } from '../../protocol/errors.js';
import type { Services } from '../services.js';
import { isClaimTaken } from '../store/envelope-store.js';
import { enrollmentDecisionClaim } from './enrollment.js';

export type EnrollmentAction = 'approve' | 'reject' | 'revoke';
export const ENROLLMENT_ACTIONS: readonly EnrollmentAction[] = ['approve', 'reject', 'revoke'];

/**
 * Journals the decision (durably) and returns the node's new enrollment state. Runs under `enrollLock`; with
 * replicas the decision also claims the state it was made on, so two replicas deciding at once on the same state
 * journal one decision (the other catches up and answers from the new state).
 */
export function decideNodeEnrollment(
  s: Pick<Services, 'state' | 'submit' | 'enrollLock' | 'syncLog'>,
  req: { nodeId: string; action: EnrollmentAction; author: string },
): Promise<{ node_id: string; enrollment: string; seq: number }> {
  const { nodeId: id, action } = req;
  return s.enrollLock.run(async () => {
    for (let attempt = 1; ; attempt++) {
      const node = s.state.nodes.get(id);
      if (!node) throw new VaultMeshError('NOT_FOUND', 'no such node', { status: 404 });
      const allowed = action === 'revoke' ? node.enrollment === 'approved' || node.enrollment === 'pending' : node.enrollment === 'pending';
      if (!allowed) throw new VaultMeshError('INVALID_STATE', `cannot ${action} a node that is ${node.enrollment}`, { status: 409 });
      try {
        const { envelope } = await s.submit({ kind: 'enrollment', node_id: id, author: req.author, body: { action } }, { claims: [{ key: enrollmentDecisionClaim(id, node) }] });
        return { node_id: id, enrollment: s.state.nodes.get(id)!.enrollment, seq: envelope.seq };
      } catch (err) {
        if (!isClaimTaken(err) || attempt >= 3) throw err;
        await s.syncLog();
      }
    }
  });
}
