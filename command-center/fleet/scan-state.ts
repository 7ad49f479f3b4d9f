/**
 * What the center remembers of scans: per node, the latest scan's summary and its open findings (everything
 * above `info`); the full reports stay in sovereign-scans.jsonl under the ledger.
 */
import type { EnvelopeOf } from '../../protocol/envelope-kinds.js';
import type { Finding, ScanSummary } from '../../protocol/scan.js';
import { severityRank } from '../../protocol/scan.js';
import type { FleetState } from './fleet-state.js';

export interface LatestScan {
  id: string;
  seq: number;
  ts: string;
  started_at: string;
  finished_at: string;
  trigger: string;
  summary: ScanSummary;
  /** Findings above `info`, most severe first. */
  open_findings: Finding[];
}

export function applyScan(state: FleetState, env: EnvelopeOf<'scan'>): void {
  const node = env.node_id ? state.nodes.get(env.node_id) : undefined;
  if (!node) return;
  const r = env.body;
  const findings = r.findings;
  node.latest_scan = {
    id: env.id,
    seq: env.seq,
    ts: env.ts,
    started_at: r.started_at,
    finished_at: r.finished_at,
    trigger: r.trigger,
    summary: r.summary,
    open_findings: findings.filter((f) => f.severity !== 'info').sort((a, b) => severityRank(b.severity) - severityRank(a.severity)),
  };
}
