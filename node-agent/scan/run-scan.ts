/**
 * Runs a sovereign scan: every enabled check concurrently, each under its own timeout, and assembles the
 * `ScanReport` the agent uploads. A host problem never makes the scan throw: a check that throws, hangs or is
 * cancelled becomes one `info` "check failed" finding and counts in `summary.checks_failed`.
 */
import { randomUUID } from 'node:crypto';
import { detailsFromZodIssues, VaultMeshError } from '../../protocol/errors.js';
import {
  SCAN_LIMITS,
  scanReportSchema,
  severityRank,
  summarize,
  type Finding,
  type ScanReport,
  type ScanTrigger,
} from '../../protocol/scan.js';
import { defaultChecks, type CheckContext, type ScanCheck } from './checks.js';
import { execFileNoShell, type ExecFileFn } from './exec-file.js';
import { createFinding, describeError } from './finding.js';
import type { ScanConfig } from './scan-config.js';

/** Check name used for findings about the scan itself (truncation). */
export const SCAN_RUNNER_CHECK = 'scan';

export interface ScanDeps {
  nodeId: string;
  agentVersion: string;
  /** Agent state directory (holds the integrity baseline). */
  stateDir: string;
  trigger?: ScanTrigger;
  /** The `sovereign-scan` command being answered (with trigger "command"). */
  commandId?: string;
  /** Report id; a fresh `scan-<uuid>` by default. Kept across upload retries for dedup. */
  id?: string;
  procRoot?: string;
  etcRoot?: string;
  runRoot?: string;
  now?: () => Date;
  execFile?: ExecFileFn;
  /** The center's time from the `Date` header of the last response, and the agent's clock when it arrived. */
  centerTime?: Date;
  centerTimeObservedAt?: Date;
  /** Cancels the whole scan (agent shutdown); unfinished checks are reported as failed. */
  signal?: AbortSignal;
  checks?: readonly ScanCheck[];
}

export class CheckTimeoutError extends Error {
  readonly code = 'CHECK_TIMEOUT';
  constructor(readonly timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms`);
    this.name = 'CheckTimeoutError';
  }
}

interface CheckOutcome {
  findings: Finding[];
  failed: boolean;
}

/** Runs one check under a timeout; always resolves. */
export async function runCheck(check: ScanCheck, ctx: Omit<CheckContext, 'signal'>, outer?: AbortSignal): Promise<CheckOutcome> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let onOuterAbort: (() => void) | undefined;
  // Rejects on timeout or cancellation; the check is also told through the signal so it can stop its IO.
  const stop = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new CheckTimeoutError(ctx.timeoutMs);
      controller.abort(err);
      reject(err);
    }, ctx.timeoutMs);
    onOuterAbort = () => {
      const err = new Error('scan cancelled', { cause: outer?.reason });
      controller.abort(err);
      reject(err);
    };
    if (outer?.aborted) onOuterAbort();
    else outer?.addEventListener('abort', onOuterAbort, { once: true });
  });
  const work = Promise.resolve().then(() => check.run({ ...ctx, signal: controller.signal }));
  // A check abandoned after its timeout may still reject later; that must not become an unhandled rejection.
  work.catch(() => undefined);
  stop.catch(() => undefined);
  try {
    const findings = await Promise.race([work, stop]);
    return { findings: findings.map((f) => createFinding({ ...f, check: f.check || check.name })), failed: false };
  } catch (err) {
    const timedOut = err instanceof CheckTimeoutError;
    return {
      failed: true,
      findings: [
        createFinding({
          check: check.name,
          severity: 'info',
          title: 'check failed',
          detail: `${check.name}: ${describeError(err)}`,
          evidence: { reason: timedOut ? 'timeout' : 'error', ...(timedOut ? { timeout_ms: ctx.timeoutMs } : {}) },
        }),
      ],
    };
  } finally {
    clearTimeout(timer);
    if (onOuterAbort) outer?.removeEventListener('abort', onOuterAbort);
  }
}

/**
 * Keeps a report within SCAN_LIMITS.findings: the worst findings survive (in their original order) and one info
 * finding says how many were dropped.
 */
export function capFindings(findings: readonly Finding[], max: number = SCAN_LIMITS.findings): Finding[] {
  if (findings.length <= max) return [...findings];
  const keep = max - 1;
  const ranked = findings.map((f, i) => ({ f, i })).sort((a, b) => severityRank(b.f.severity) - severityRank(a.f.severity) || a.i - b.i);
  const kept = ranked.slice(0, keep).sort((a, b) => a.i - b.i).map((x) => x.f);
  kept.push(
    createFinding({
      check: SCAN_RUNNER_CHECK,
      severity: 'info',
      title: 'findings truncated',
      detail: `${findings.length - keep} of ${findings.length} findings were dropped to fit the report limit; the most severe were kept.`,
      evidence: { total: findings.length, dropped: findings.length - keep },
    }),
  );
  return kept;
}

/** Runs every enabled check and returns a validated report. Throws only for invalid deps (e.g. a bad node id). */
export async function runSovereignScan(config: ScanConfig, deps: ScanDeps): Promise<ScanReport> {
  const now = deps.now ?? (() => new Date());
  const trigger = deps.trigger ?? 'manual';
  const startedAt = now();
  const disabled = new Set(config.disabledChecks);
  const checks = (deps.checks ?? defaultChecks).filter((c) => !disabled.has(c.name));
  const base = {
    config,
    procRoot: deps.procRoot ?? '/proc',
    etcRoot: deps.etcRoot ?? '/etc',
    runRoot: deps.runRoot ?? '/run',
    stateDir: deps.stateDir,
    now,
    execFile: deps.execFile ?? execFileNoShell,
    centerTime: deps.centerTime,
    centerTimeObservedAt: deps.centerTimeObservedAt,
  };

  const outcomes = await Promise.all(
    checks.map((check) => runCheck(check, { ...base, timeoutMs: config.timeoutsMs[check.name] ?? config.timeoutsMs.default }, deps.signal)),
  );
  const findings = capFindings(outcomes.flatMap((o) => o.findings));
  const finishedAt = now();

  const report = {
    id: deps.id ?? `scan-${randomUUID()}`,
    node_id: deps.nodeId,
    // A clock stepped backwards mid-scan must not produce finished_at < started_at.
    started_at: startedAt.toISOString(),
    finished_at: (finishedAt < startedAt ? startedAt : finishedAt).toISOString(),
    agent_version: deps.agentVersion,
    findings,
    summary: summarize(findings, { checks_run: checks.length, checks_failed: outcomes.filter((o) => o.failed).length }),
    trigger,
    ...(deps.commandId !== undefined ? { command_id: deps.commandId } : {}),
  };
  const parsed = scanReportSchema.safeParse(report);
  if (!parsed.success) {
    throw new VaultMeshError('VALIDATION_ERROR', 'scan report does not match the contract', {
      details: detailsFromZodIssues(parsed.error.issues),
    });
  }
  return parsed.data;
}
