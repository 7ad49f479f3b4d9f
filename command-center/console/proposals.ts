/**
 * The console's "Proposals awaiting approval" panel: commands the policy makes wait for approvals, oldest first,
 * with who proposed them, who approved them so far and when they lapse. Pure: state in, view out.
 */
import type { FleetState } from '../fleet/fleet-state.js';
import { formatClock } from './view-model.js';

export interface ProposalItem {
  id: string;
  action: string;
  /** `unit=nginx.service lines=200` */
  args: string;
  nodeId: string;
  hostname: string;
  proposedBy: string;
  approvals: number;
  required: number;
  approvedBy: string[];
  expiresAt: string;
  expiresClock: string;
}

export function proposalsAwaiting(state: FleetState, nowMs: number, limit = 20): { items: ProposalItem[]; more: number } {
  const items: ProposalItem[] = [];
  let total = 0;
  for (const id of state.commands.proposals) {
    const rec = state.commands.byId.get(id);
    const p = rec?.proposal;
    // A lapsed proposal leaves the list at once, before the sweep journals it.
    if (!rec || !p || nowMs >= Date.parse(p.expires_at)) continue;
    total++;
    if (items.length >= limit) continue;
    items.push({
      id,
      action: rec.action,
      args: Object.entries(rec.args).map(([k, v]) => `${k}=${String(v)}`).join(' '),
      nodeId: rec.node_id,
      hostname: state.nodes.get(rec.node_id)?.hostname ?? rec.node_id,
      proposedBy: p.proposed_by,
      approvals: p.approvals.length,
      required: p.required,
      approvedBy: p.approvals.map((a) => a.by),
      expiresAt: p.expires_at,
      expiresClock: formatClock(p.expires_at),
    });
  }
  return { items, more: total - items.length };
}
