/**
 * Finding severities and their order, without zod: protocol/scan.ts builds its schemas from these and re-exports
 * them, and readers that only compare severities (the offline `vaultmesh logs`) import this module alone.
 */

/** Severities, most severe first. The order is part of the contract (sorting, summaries, console colours). */
export const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];

/**
 * Numeric rank of a severity: `critical` = 4 … `info` = 0, so `severityRank(a) > severityRank(b)` means
 * "a is worse than b" and `findings.sort((a, b) => severityRank(b.severity) - severityRank(a.severity))` puts the
 * worst first.
 */
export function severityRank(severity: Severity): number {
  return SEVERITIES.length - 1 - SEVERITIES.indexOf(severity);
}

/** `severityRank` of any value read from a journal: -1 for anything that is not a severity. */
export function severityRankOf(value: unknown): number {
  const i = typeof value === 'string' ? SEVERITIES.indexOf(value as Severity) : -1;
  return i === -1 ? -1 : SEVERITIES.length - 1 - i;
}
