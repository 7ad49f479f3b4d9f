/**
 * The sovereign scan wire contract: what an agent sends to `POST /api/agent/scan` and what the center journals as
 * the body of a `scan` envelope. Shared by the agent (which builds reports) and the center (which validates them).
 * Every string, record and array is bounded so one report can never blow up a journal line or the console.
 */
import { z } from 'zod';
import { idSchema, nodeIdSchema, rfc3339Schema } from './envelope.js';
import { agentVersionSchema } from './agent-api.js';

// The severities and their ranks live in severities.ts, without zod, for readers that only need the names.
export { SEVERITIES, severityRank, severityRankOf, type Severity } from './severities.js';
import { SEVERITIES, severityRank, type Severity } from './severities.js';

/** Severities above `info`: what an incident may have, and the findings a node's latest scan keeps open. */
export type ActionableSeverity = Exclude<Severity, 'info'>;
export const ACTIONABLE_SEVERITIES = SEVERITIES.filter((s): s is ActionableSeverity => s !== 'info') as [ActionableSeverity, ...ActionableSeverity[]];

export const SCAN_LIMITS = {
  checkName: 64,
  title: 200,
  detail: 2000,
  evidenceKeys: 32,
  evidenceKey: 64,
  evidenceString: 1024,
  findings: 500,
  agentVersion: 64,
} as const;

export const severitySchema = z.enum(SEVERITIES);

/** Check names are short machine identifiers (`ssh-hardening`), used as keys in config and the console. */
export const checkNameSchema = z
  .string()
  .regex(/^[a-z][a-z0-9._-]{0,63}$/, 'must be 1-64 of a-z 0-9 . _ - starting with a letter');

export const evidenceValueSchema = z.union([
  z.string().max(SCAN_LIMITS.evidenceString),
  z.number().finite(),
  z.boolean(),
  z.null(),
]);

/** Flat evidence only: nested structures would make findings hard to diff, render and bound. */
export const evidenceSchema = z
  .record(z.string().min(1).max(SCAN_LIMITS.evidenceKey), evidenceValueSchema)
  .refine((r) => Object.keys(r).length <= SCAN_LIMITS.evidenceKeys, `at most ${SCAN_LIMITS.evidenceKeys} evidence keys`);

export const findingSchema = z
  .object({
    check: checkNameSchema,
    severity: severitySchema,
    title: z.string().min(1).max(SCAN_LIMITS.title),
    detail: z.string().max(SCAN_LIMITS.detail),
    evidence: evidenceSchema,
  })
  .strict();
export type Finding = z.infer<typeof findingSchema>;
export type Evidence = z.infer<typeof evidenceSchema>;
export type EvidenceValue = z.infer<typeof evidenceValueSchema>;

const count = z.number().int().nonnegative();

export const scanSummarySchema = z
  .object({
    critical: count,
    high: count,
    medium: count,
    low: count,
    info: count,
    checks_run: count,
    checks_failed: count,
  })
  .strict();
export type ScanSummary = z.infer<typeof scanSummarySchema>;

export const SCAN_TRIGGERS = ['command', 'schedule', 'manual'] as const;
export const scanTriggerSchema = z.enum(SCAN_TRIGGERS);
export type ScanTrigger = (typeof SCAN_TRIGGERS)[number];

export const scanReportSchema = z
  .object({
    /** Agent-chosen id: a retried upload (offline outbox) is recognised and journaled once. */
    id: idSchema.optional(),
    node_id: nodeIdSchema,
    started_at: rfc3339Schema,
    finished_at: rfc3339Schema,
    agent_version: agentVersionSchema.max(SCAN_LIMITS.agentVersion),
    findings: z.array(findingSchema).max(SCAN_LIMITS.findings),
    summary: scanSummarySchema,
    trigger: scanTriggerSchema,
    /** The `sovereign-scan` command this report answers (only with `trigger: "command"`). */
    command_id: idSchema.optional(),
  })
  .strict()
  .superRefine((report, ctx) => {
    // The summary is redundant with the findings on purpose (cheap to render), so it must agree with them.
    const expected = summarize(report.findings);
    for (const severity of SEVERITIES) {
      if (report.summary[severity] !== expected[severity]) {
        ctx.addIssue({
          code: 'custom',
          path: ['summary', severity],
          message: `summary says ${report.summary[severity]} ${severity} findings, the report has ${expected[severity]}`,
        });
      }
    }
    if (report.summary.checks_failed > report.summary.checks_run) {
      ctx.addIssue({ code: 'custom', path: ['summary', 'checks_failed'], message: 'more checks failed than ran' });
    }
    if (Date.parse(report.finished_at) < Date.parse(report.started_at)) {
      ctx.addIssue({ code: 'custom', path: ['finished_at'], message: 'finished_at is before started_at' });
    }
    if (report.command_id !== undefined && report.trigger !== 'command') {
      ctx.addIssue({ code: 'custom', path: ['command_id'], message: 'command_id is only allowed with trigger "command"' });
    }
  });
export type ScanReport = z.infer<typeof scanReportSchema>;

/**
 * Counts findings per severity. `checks` (how many checks ran and how many failed) is not derivable from the
 * findings, so the caller passes it; it defaults to zero for callers that only want the severity counts.
 */
export function summarize(
  findings: readonly Pick<Finding, 'severity'>[],
  checks: { checks_run: number; checks_failed: number } = { checks_run: 0, checks_failed: 0 },
): ScanSummary {
  const summary: ScanSummary = { critical: 0, high: 0, medium: 0, low: 0, info: 0, ...checks };
  for (const f of findings) summary[f.severity] += 1;
  return summary;
}

/** Worst severity among findings, or undefined for none (useful for a node's badge colour). */
export function worstSeverity(findings: readonly Pick<Finding, 'severity'>[]): Severity | undefined {
  let worst: Severity | undefined;
  for (const f of findings) if (worst === undefined || severityRank(f.severity) > severityRank(worst)) worst = f.severity;
  return worst;
}
