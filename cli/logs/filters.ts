/**
 * Filters for `vaultmesh logs`: turns raw flag values (whatever cac/mri produced: strings, numbers, booleans) into
 * one typed `LogFilter`, and decides whether an envelope matches it. Pure: the clock is a parameter.
 * Bad values become a VaultMeshError with code USAGE and a hint (the CLI exits 2 with them).
 */
import { journalForKind, type JournalName } from '../../protocol/envelope-shape.js';
import type { Envelope } from '../../protocol/envelope.js';
import { VaultMeshError } from '../../protocol/errors.js';
import type { KnownEnvelope } from '../../protocol/envelope-kinds.js';
import { SEVERITIES as MOST_SEVERE_FIRST, severityRank as rankOfSeverity, severityRankOf, type Severity } from '../../protocol/severities.js';

/** Least severe first, as `--min-severity` lists them. */
export const SEVERITIES = [...MOST_SEVERE_FIRST].reverse() as Severity[];
export type { Severity };

/** Rank of a severity string, or -1 for anything unknown (so unknown values never pass a --min-severity). */
export const severityRank = severityRankOf;

export interface LogFilter {
  /** Only these kinds (undefined: all). */
  kinds?: ReadonlySet<string>;
  node?: string;
  /** Inclusive lower bound on `ts`, epoch ms. */
  since?: number;
  /** Exclusive upper bound on `ts`, epoch ms. */
  until?: number;
  minSeverity?: Severity;
  limit?: number;
}

/** Flag values as the CLI hands them over; every field may be missing or of the wrong type. */
export interface RawFilterOptions {
  kind?: unknown;
  node?: unknown;
  since?: unknown;
  until?: unknown;
  minSeverity?: unknown;
  limit?: unknown;
}

/** A USAGE error whose first detail carries the hint printed under the message. */
export function usageError(message: string, hint: string, path = ''): VaultMeshError {
  return new VaultMeshError('USAGE', message, { details: [{ path, message: hint, hint }] });
}

/** The hint of a USAGE error made by `usageError`, if any. */
export function hintOf(err: VaultMeshError): string | undefined {
  const hint = err.details?.[0]?.hint;
  return typeof hint === 'string' ? hint : undefined;
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

// A date, or a date-time that names its zone: a bare local time would mean different instants on different hosts.
const ABSOLUTE_TIME = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/i;
const RELATIVE_TIME = /^(\d{1,9})([smhdw])$/;

const TIME_HINT = 'use a duration back from now (30s, 30m, 2h, 7d, 1w) or RFC 3339 with a zone (2026-11-20T10:00Z, 2026-11-20)';

/**
 * Parses `2h`, `30m`, `7d`, `2026-11-20`, `2026-11-20T10:00Z`, `2026-11-20T10:00:00.5+02:00` into epoch ms.
 * Durations count back from `now`. A date alone is UTC midnight.
 */
export function parseTimeBound(value: string, now: number): number | undefined {
  const rel = RELATIVE_TIME.exec(value);
  if (rel) return now - Number(rel[1]) * DURATION_UNITS[rel[2]!]!;
  if (!ABSOLUTE_TIME.test(value)) return undefined;
  // Date.parse reads a date-only string as UTC, and "T10:00Z" (no seconds) as well on V8.
  const ms = Date.parse(value.length === 10 ? `${value}T00:00:00Z` : value.toUpperCase());
  return Number.isNaN(ms) ? undefined : ms;
}

/** cac hands `--x` without a value as `true` and numeric-looking values as numbers: normalise to a string. */
function flagString(flag: string, value: unknown, hint: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (value === true || value === false || value === '') throw usageError(`--${flag} needs a value`, hint, flag);
  // Repeated flags arrive as an array: the last one wins, as with most CLIs.
  if (Array.isArray(value)) return flagString(flag, value[value.length - 1], hint);
  return String(value);
}

/**
 * Validates every filter flag once, at the edge, with the zod schemas of filter-schemas.ts (loaded only when a flag
 * that needs one is given); the result is trusted everywhere else.
 */
export async function parseFilter(raw: RawFilterOptions, now: number = Date.now()): Promise<LogFilter> {
  const filter: LogFilter = {};
  const schemas = () => import('./filter-schemas.js');

  const kindHint = 'give a comma-separated list of kinds, e.g. --kind scan,incident';
  const kind = flagString('kind', raw.kind, kindHint);
  if (kind !== undefined) {
    const list = kind.split(',').map((k) => k.trim()).filter((k) => k.length > 0);
    const parsed = (await schemas()).kindListSchema.safeParse(list);
    if (!parsed.success) throw usageError(`bad --kind "${kind}": ${parsed.error.issues[0]?.message ?? 'invalid'}`, kindHint, 'kind');
    filter.kinds = new Set(parsed.data);
  }

  const nodeHint = 'pass a node id as shown by `vaultmesh logs stats`, e.g. --node web-01';
  const node = flagString('node', raw.node, nodeHint);
  if (node !== undefined) {
    const parsed = (await schemas()).nodeIdSchema.safeParse(node);
    if (!parsed.success) throw usageError(`bad --node "${node}": ${parsed.error.issues[0]?.message ?? 'invalid'}`, nodeHint, 'node');
    filter.node = parsed.data;
  }

  for (const flag of ['since', 'until'] as const) {
    const value = flagString(flag, raw[flag], TIME_HINT);
    if (value === undefined) continue;
    const ms = parseTimeBound(value, now);
    if (ms === undefined) throw usageError(`bad --${flag} "${value}": not a duration or an RFC 3339 time`, TIME_HINT, flag);
    filter[flag] = ms;
  }
  if (filter.since !== undefined && filter.until !== undefined && filter.since >= filter.until) {
    throw usageError('--since must be earlier than --until', 'swap the two values, or drop one of them', 'since');
  }

  const sevHint = `use one of ${SEVERITIES.join(', ')}`;
  const sev = flagString('min-severity', raw.minSeverity, sevHint);
  if (sev !== undefined) {
    const parsed = (await schemas()).severitySchema.safeParse(sev.toLowerCase());
    if (!parsed.success) throw usageError(`bad --min-severity "${sev}"`, sevHint, 'min-severity');
    filter.minSeverity = parsed.data;
  }

  const limitHint = 'give a positive whole number, e.g. --limit 100';
  const limit = flagString('limit', raw.limit, limitHint);
  if (limit !== undefined) {
    const parsed = (await schemas()).limitSchema.safeParse(limit);
    if (!parsed.success) throw usageError(`bad --limit "${limit}": must be a positive integer`, limitHint, 'limit');
    filter.limit = parsed.data;
  }
  return filter;
}

/** Highest severity an envelope carries: a scan's worst finding or an incident's severity; -1 for everything else. */
export function envelopeSeverityRank(env: Envelope): number {
  // Typed as the registry types it; only `incident` and `scan` are read, by name (the registry's schemas stay unloaded).
  const e = env as unknown as KnownEnvelope;
  if (e.kind === 'incident') return severityRank(e.body?.severity);
  if (e.kind !== 'scan') return -1;
  // Read defensively: a filter runs on every line of a journal that may have been copied or edited by hand.
  let rank = -1;
  const findings: unknown = e.body?.findings;
  if (Array.isArray(findings)) for (const f of findings as Array<{ severity?: unknown } | null>) rank = Math.max(rank, severityRank(f?.severity));
  return rank;
}

/** Whether `env` passes every criterion of `filter` (the limit is the caller's business). */
export function matchesFilter(env: Envelope, filter: LogFilter): boolean {
  if (filter.kinds !== undefined && !filter.kinds.has(env.kind)) return false;
  if (filter.node !== undefined && env.node_id !== filter.node) return false;
  if (filter.since !== undefined || filter.until !== undefined) {
    const ts = Date.parse(env.ts);
    // An unparseable timestamp cannot be placed in a window, so it never matches one.
    if (Number.isNaN(ts)) return false;
    if (filter.since !== undefined && ts < filter.since) return false;
    if (filter.until !== undefined && ts >= filter.until) return false;
  }
  if (filter.minSeverity !== undefined && envelopeSeverityRank(env) < rankOfSeverity(filter.minSeverity)) return false;
  return true;
}

/**
 * Which journals can hold a match: `--kind scan` only needs sovereign-scans.jsonl, which turns a multi-GB read
 * into a fraction of it. Undefined means all of them.
 */
export function journalsForFilter(filter: LogFilter): ReadonlySet<JournalName> | undefined {
  if (filter.kinds === undefined) return undefined;
  return new Set([...filter.kinds].map(journalForKind));
}
