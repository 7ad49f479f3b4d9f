/**
 * Building findings that always satisfy the wire contract. Checks put host data (paths, unit descriptions, config
 * values) into findings; host data is unbounded and may be hostile, so everything is clamped here rather than
 * trusting each check to remember the limits.
 */
import { SCAN_LIMITS, type Evidence, type Finding, type Severity } from '../../protocol/scan.js';

export type EvidenceInput = Record<string, string | number | boolean | null | undefined>;

export interface FindingInput {
  check: string;
  severity: Severity;
  title: string;
  detail?: string;
  evidence?: EvidenceInput;
}

/** Cuts a string to `max` UTF-16 units, marking the cut so a reader knows the value is incomplete. */
export function clampText(value: string, max: number): string {
  if (value.length <= max) return value;
  // Avoid leaving half of a surrogate pair at the cut.
  let end = max - 1;
  const code = value.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end -= 1;
  return `${value.slice(0, end)}…`;
}

function clampEvidence(input: EvidenceInput | undefined): Evidence {
  const out: Evidence = {};
  if (!input) return out;
  let n = 0;
  for (const [rawKey, value] of Object.entries(input)) {
    if (value === undefined || rawKey.length === 0) continue;
    if (n >= SCAN_LIMITS.evidenceKeys) break;
    const key = rawKey.slice(0, SCAN_LIMITS.evidenceKey);
    if (typeof value === 'string') out[key] = clampText(value, SCAN_LIMITS.evidenceString);
    else if (typeof value === 'number') out[key] = Number.isFinite(value) ? value : null;
    else out[key] = value;
    n += 1;
  }
  return out;
}

/** Creates a finding whose strings and evidence fit `findingSchema` whatever the host handed us. */
export function createFinding(input: FindingInput): Finding {
  return {
    check: input.check,
    severity: input.severity,
    title: clampText(input.title || '(untitled)', SCAN_LIMITS.title),
    detail: clampText(input.detail ?? '', SCAN_LIMITS.detail),
    evidence: clampEvidence(input.evidence),
  };
}

/**
 * The finding a check returns when the thing it inspects does not exist on this host (no systemd in a container,
 * no sshd installed, no /proc/net). It is `info`: absence is worth knowing, not worth an alert.
 */
export function sourceUnavailable(check: string, detail: string, evidence?: EvidenceInput): Finding {
  return createFinding({ check, severity: 'info', title: 'source unavailable', detail, ...(evidence ? { evidence } : {}) });
}

/** Short, single-line description of an unknown thrown value for a finding's detail. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** The errno code of a file-system error, if any (`ENOENT`, `EACCES` …). */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}
