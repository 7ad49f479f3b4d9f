/**
 * Operator decisions on an enrollment (approve, reject, revoke), shared by the operator API and the console so both
 * check the same state rules and journal the same envelope.
 */
import { VaultMeshError } from '../../protocol/errors.js';
import type { Services } from '../services.js';

export type EnrollmentAction = 'approve' | 'reject' | 'revoke';
export const ENROLLMENT_ACTIONS: readonly EnrollmentAction[] = ['approve', 'reject', 'revoke'];

/** Journals the decision (durably) and returns the node's new enrollment state. Runs under `enrollLock`. */
export function decideNodeEnrollment(
  s: Pick<Services, 'state' | 'submit' | 'enrollLock'>,
  req: { nodeId: string; action: EnrollmentAction; author: string },
): Promise<{ node_id: string; enrollment: string; seq: number }> {
  const { nodeId: id, action } = req;
  return s.enrollLock.run(async () => {
    const node = s.state.nodes.get(id);
    if (!node) throw new VaultMeshError('NOT_FOUND', 'no such node', { status: 404 });
    const allowed = action === 'revoke' ? node.enrollment === 'approved' || node.enrollment === 'pending' : node.enrollment === 'pending';
    if (!allowed) throw new VaultMeshError('INVALID_STATE', `cannot ${action} a node that is ${node.enrollment}`, { status: 409 });
    const { envelope } = await s.submit({ kind: 'enrollment', node_id: id, author: req.author, body: { action } });
    return { node_id: id, enrollment: s.state.nodes.get(id)!.enrollment, seq: envelope.seq };
  });
}
