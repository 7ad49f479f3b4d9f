/**
 * `vaultmesh logs stats`: one streaming pass over the journals that folds every envelope into per-node figures
 * (counts by kind, first/last seen, heartbeat gaps, findings by severity, commands by receipt status) and a fleet
 * total. The accumulator is pure and bounded per node (no per-event memory), so multi-GB journals cost the same
 * memory as small ones; rendering (table or JSON) is separate from computing.
 *
 * Bodies are read as the kind registry types them (`KnownEnvelope`; the kinds counted here are switched on by name,
 * so the registry's schemas are not loaded): a command is counted once, at its `issued` event (a
 * command's later `delivered` / `expired` / `completed` lines are steps, not commands), and its outcome is the
 * `status` inside the signed receipt's payload.
 */
import type { Envelope } from '../../protocol/envelope.js';
import type { KnownEnvelope } from '../../protocol/envelope-kinds.js';
import { SEVERITIES } from '../../protocol/severities.js';
import { journalsForFilter, matchesFilter, type LogFilter } from './filters.js';
import { scanJournals } from './journal-files.js';
import { sanitize } from '../terminal-text.js';

export const FINDING_SEVERITIES = SEVERITIES;
export type SeverityCounts = Record<(typeof FINDING_SEVERITIES)[number], number>;

export interface CommandStats {
  /** Commands issued (one per command, at its `issued` event). */
  issued: number;
  /** Receipts by the status the node signed (`succeeded`, `failed`, `rejected`, `expired`). */
  by_status: Record<string, number>;
  /** Commands the center marked expired because no receipt came in time (a receipt may still follow). */
  expired_unanswered: number;
}

export interface HeartbeatStats {
  count: number;
  /** Median interval between consecutive heartbeats, seconds (±1 %: see LOG_STEP). */
  median_interval_s: number | null;
  max_gap_s: number | null;
  /** Intervals longer than twice the median: missed heartbeats. */
  gaps_over_2x_median: number;
}

export interface NodeStats {
  /** null gathers envelopes that name no node (operator notes, audits...). */
  node_id: string | null;
  total: number;
  kinds: Record<string, number>;
  first_seen: string;
  last_seen: string;
  heartbeats: HeartbeatStats;
  findings: { scans: number; latest_scan_ts: string | null; latest: SeverityCounts | null; total: SeverityCounts };
  commands: CommandStats;
}

export interface FleetStats {
  nodes: number;
  total: number;
  kinds: Record<string, number>;
  first_seen: string | null;
  last_seen: string | null;
  heartbeats: number;
  findings: { scans: number; latest: SeverityCounts; total: SeverityCounts };
  commands: CommandStats;
}

export interface StatsReport {
  nodes: NodeStats[];
  fleet: FleetStats;
}

// Heartbeat intervals go into log-spaced buckets 1 % wide: the median and the "> 2× median" count then need a
// few hundred counters per node instead of every interval, and 1 % is far finer than heartbeat jitter.
const LOG_STEP = Math.log(1.01);
const bucketOf = (ms: number): number => Math.floor(Math.log(Math.max(ms, 1)) / LOG_STEP);
const bucketLow = (b: number): number => Math.exp(b * LOG_STEP);
const bucketMid = (b: number): number => Math.exp((b + 0.5) * LOG_STEP);

/**
 * A node's latest timestamp, kept without holding the string of the line it came from. The accumulator lives for
 * the whole pass while most of a node's values are replaced every few hundred lines: a line's string kept in it
 * outlives two young-generation collections and is promoted, and a pass over a multi-GB journal then left tens of MB
 * in the old generation for its next full collection. A timestamp in the center's own form (what toISOString gives)
 * is kept as its time value, updated in place; any other text is kept as it is.
 */
class TimeSlot {
  private ms = Number.NaN;
  private text: string | undefined = undefined;
  set(ts: string): void {
    const ms = Date.parse(ts);
    if (!Number.isNaN(ms) && ts.length === 24 && new Date(ms).toISOString() === ts) {
      this.ms = ms;
      this.text = undefined;
    } else {
      this.text = ts;
    }
  }
  /** The timestamp exactly as written, or null before the first `set`. */
  get(): string | null {
    return this.text ?? (Number.isNaN(this.ms) ? null : new Date(this.ms).toISOString());
  }
}

interface NodeAcc {
  node_id: string | null;
  total: number;
  kinds: Map<string, number>;
  first: string;
  last: TimeSlot;
  hbCount: number;
  /** NaN before the first heartbeat (a number field V8 updates in place). */
  hbLastMs: number;
  /** -1 before the first interval. */
  hbMaxGapMs: number;
  hbIntervals: Map<number, number>;
  scans: number;
  latestScanTs: TimeSlot;
  /** Updated in place from each scan (null before the first). */
  latest: SeverityCounts | null;
  findingsTotal: SeverityCounts;
  issued: number;
  byStatus: Map<string, number>;
  expiredUnanswered: number;
}

const zeroSeverities = (): SeverityCounts => ({ critical: 0, high: 0, medium: 0, low: 0, info: 0 });
const bump = (m: Map<string, number>, k: string, by = 1): void => {
  m.set(k, (m.get(k) ?? 0) + by);
};

// Counted from the findings rather than taken from `summary`: a report's summary is checked against its findings
// when it arrives, but counting is what a reader of a foreign or hand-edited journal can trust.
function findingCounts(findings: unknown): SeverityCounts {
  const counts = zeroSeverities();
  if (!Array.isArray(findings)) return counts;
  for (const f of findings as Array<{ severity?: unknown } | null>) {
    const sev = f?.severity;
    if (typeof sev === 'string' && Object.hasOwn(counts, sev)) counts[sev as keyof SeverityCounts]++;
  }
  return counts;
}

export interface StatsAccumulator {
  add(env: Envelope): void;
  report(): StatsReport;
}

/** Folds envelopes (in seq order) into per-node stats. Pure; memory grows with nodes and kinds, not events. */
export function createStatsAccumulator(): StatsAccumulator {
  const nodes = new Map<string | null, NodeAcc>();

  const nodeAcc = (id: string | null, ts: string): NodeAcc => {
    let acc = nodes.get(id);
    if (!acc) {
      acc = {
        node_id: id,
        total: 0,
        kinds: new Map(),
        first: ts,
        last: new TimeSlot(),
        hbCount: 0,
        hbLastMs: Number.NaN,
        hbMaxGapMs: -1,
        hbIntervals: new Map(),
        scans: 0,
        latestScanTs: new TimeSlot(),
        latest: null,
        findingsTotal: zeroSeverities(),
        issued: 0,
        byStatus: new Map(),
        expiredUnanswered: 0,
      };
      nodes.set(id, acc);
    }
    return acc;
  };

  const add = (env: Envelope): void => {
    // The kinds below are known kinds; any other (a newer center's) falls through the switch.
    const e = env as unknown as KnownEnvelope;
    const acc = nodeAcc(env.node_id ?? null, env.ts);
    acc.total++;
    const kinds = acc.kinds;
    kinds.set(env.kind, (kinds.get(env.kind) ?? 0) + 1);
    // Seq order is the center's order of arrival, so the first and last envelopes bound the node's activity.
    acc.last.set(env.ts);
    switch (e.kind) {
      case 'heartbeat': {
        acc.hbCount++;
        const ms = Date.parse(env.ts);
        if (Number.isNaN(ms)) break;
        if (!Number.isNaN(acc.hbLastMs)) {
          const gap = ms - acc.hbLastMs;
          const b = bucketOf(gap);
          acc.hbIntervals.set(b, (acc.hbIntervals.get(b) ?? 0) + 1);
          if (acc.hbMaxGapMs < 0 || gap > acc.hbMaxGapMs) acc.hbMaxGapMs = gap;
        }
        acc.hbLastMs = ms;
        break;
      }
      case 'scan': {
        acc.scans++;
        const counts = findingCounts(e.body?.findings);
        for (const s of FINDING_SEVERITIES) acc.findingsTotal[s] += counts[s];
        if (acc.latest) Object.assign(acc.latest, counts);
        else acc.latest = counts;
        acc.latestScanTs.set(env.ts);
        break;
      }
      case 'command':
        if (e.body?.event === 'issued') acc.issued++;
        else if (e.body?.event === 'expired') acc.expiredUnanswered++;
        break;
      case 'receipt': {
        const status: unknown = e.body?.payload?.status;
        bump(acc.byStatus, typeof status === 'string' ? status : 'unknown');
        break;
      }
    }
  };

  const heartbeatStats = (acc: NodeAcc): HeartbeatStats => {
    let intervals = 0;
    for (const c of acc.hbIntervals.values()) intervals += c;
    if (intervals === 0) return { count: acc.hbCount, median_interval_s: null, max_gap_s: null, gaps_over_2x_median: 0 };
    const buckets = [...acc.hbIntervals.entries()].sort((a, b) => a[0] - b[0]);
    const half = Math.ceil(intervals / 2);
    let seen = 0;
    let medianMs = 0;
    for (const [b, c] of buckets) {
      seen += c;
      if (seen >= half) {
        medianMs = bucketMid(b);
        break;
      }
    }
    let longGaps = 0;
    for (const [b, c] of buckets) if (bucketLow(b) > 2 * medianMs) longGaps += c;
    return {
      count: acc.hbCount,
      median_interval_s: roundTo(medianMs / 1000, 1),
      max_gap_s: roundTo(Math.max(acc.hbMaxGapMs, 0) / 1000, 3),
      gaps_over_2x_median: longGaps,
    };
  };

  const report = (): StatsReport => {
    const list = [...nodes.values()].sort((a, b) =>
      a.node_id === b.node_id ? 0 : a.node_id === null ? 1 : b.node_id === null ? -1 : a.node_id < b.node_id ? -1 : 1,
    );
    const fleetKinds = new Map<string, number>();
    const fleetStatus = new Map<string, number>();
    const fleet: FleetStats = {
      nodes: list.filter((n) => n.node_id !== null).length,
      total: 0,
      kinds: {},
      first_seen: null,
      last_seen: null,
      heartbeats: 0,
      findings: { scans: 0, latest: zeroSeverities(), total: zeroSeverities() },
      commands: { issued: 0, by_status: {}, expired_unanswered: 0 },
    };
    const out: NodeStats[] = list.map((acc) => {
      const last = acc.last.get() ?? acc.first;
      fleet.total += acc.total;
      for (const [k, v] of acc.kinds) bump(fleetKinds, k, v);
      for (const [k, v] of acc.byStatus) bump(fleetStatus, k, v);
      if (fleet.first_seen === null || acc.first < fleet.first_seen) fleet.first_seen = acc.first;
      if (fleet.last_seen === null || last > fleet.last_seen) fleet.last_seen = last;
      fleet.heartbeats += acc.hbCount;
      fleet.findings.scans += acc.scans;
      for (const s of FINDING_SEVERITIES) {
        fleet.findings.total[s] += acc.findingsTotal[s];
        fleet.findings.latest[s] += acc.latest?.[s] ?? 0;
      }
      fleet.commands.issued += acc.issued;
      fleet.commands.expired_unanswered += acc.expiredUnanswered;
      return {
        node_id: acc.node_id,
        total: acc.total,
        kinds: sortedRecord(acc.kinds),
        first_seen: acc.first,
        last_seen: last,
        heartbeats: heartbeatStats(acc),
        findings: { scans: acc.scans, latest_scan_ts: acc.latestScanTs.get(), latest: acc.latest && { ...acc.latest }, total: acc.findingsTotal },
        commands: { issued: acc.issued, by_status: sortedRecord(acc.byStatus), expired_unanswered: acc.expiredUnanswered },
      };
    });
    fleet.kinds = sortedRecord(fleetKinds);
    fleet.commands.by_status = sortedRecord(fleetStatus);
    return { nodes: out, fleet };
  };

  return { add, report };
}

function sortedRecord(m: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
}

function roundTo(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** 45s, 12m, 3.5h, 2.1d: a gap at a glance. */
export function formatDuration(seconds: number | null): string {
  if (seconds === null) return '-';
  if (seconds < 90) return `${roundTo(seconds, seconds < 10 ? 1 : 0)}s`;
  if (seconds < 90 * 60) return `${roundTo(seconds / 60, 1)}m`;
  if (seconds < 36 * 3600) return `${roundTo(seconds / 3600, 1)}h`;
  return `${roundTo(seconds / 86400, 1)}d`;
}

const sev = (c: SeverityCounts | null): string => (c ? `${c.critical}/${c.high}/${c.medium}/${c.low}` : '-');
const statuses = (s: Record<string, number>): string => `${s.succeeded ?? 0}/${s.failed ?? 0}/${s.rejected ?? 0}/${s.expired ?? 0}`;

/**
 * The human table: one row per node and a fleet total row. Pure, tested by exact string. CMDS counts commands
 * issued; OTHER is every line that is not a heartbeat, a scan or a command step/receipt.
 */
export function renderStatsTable(report: StatsReport): string {
  const header = ['NODE', 'EVENTS', 'HB', 'SCANS', 'CMDS', 'OTHER', 'FIRST SEEN', 'LAST SEEN', 'HB MEDIAN', 'HB MAX GAP', 'GAPS>2x', 'LATEST C/H/M/L', 'TOTAL C/H/M/L', 'RECEIPTS ok/fail/rej/exp'];
  const rows: string[][] = [header];
  const row = (
    name: string,
    total: number,
    kinds: Record<string, number>,
    first: string | null,
    last: string | null,
    hb: HeartbeatStats | null,
    latest: SeverityCounts | null,
    totalSev: SeverityCounts,
    commands: CommandStats,
  ): string[] => {
    const hbN = kinds.heartbeat ?? 0;
    const scans = kinds.scan ?? 0;
    const commandLines = (kinds.command ?? 0) + (kinds.receipt ?? 0);
    return [
      sanitize(name),
      String(total),
      String(hbN),
      String(scans),
      String(commands.issued),
      String(total - hbN - scans - commandLines),
      first === null ? '-' : sanitize(first),
      last === null ? '-' : sanitize(last),
      hb ? formatDuration(hb.median_interval_s) : '',
      hb ? formatDuration(hb.max_gap_s) : '',
      hb ? String(hb.gaps_over_2x_median) : '',
      sev(latest),
      sev(totalSev),
      statuses(commands.by_status),
    ];
  };
  for (const n of report.nodes) {
    rows.push(row(n.node_id ?? '(no node)', n.total, n.kinds, n.first_seen, n.last_seen, n.heartbeats, n.findings.latest, n.findings.total, n.commands));
  }
  const f = report.fleet;
  rows.push(row(`FLEET (${f.nodes} nodes)`, f.total, f.kinds, f.first_seen, f.last_seen, null, f.findings.latest, f.findings.total, f.commands));
  const widths = header.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  // Numbers right-aligned, text left-aligned, as in `ls -l`.
  const numeric = new Set([1, 2, 3, 4, 5, 10]);
  return rows
    .map((r) => r.map((cell, i) => (numeric.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd())
    .join('\n');
}

export interface StatsOptions {
  dir: string;
  filter: LogFilter;
  skipCorrupt: boolean;
  warn: (message: string) => void;
}

/** The IO shell: one merged pass over the log dir into the accumulator. */
export async function computeStats(opts: StatsOptions): Promise<StatsReport & { skipped_corrupt: number; torn_tails: number }> {
  const acc = createStatsAccumulator();
  const { filter } = opts;
  const unfiltered = filter.kinds === undefined && filter.node === undefined && filter.since === undefined && filter.until === undefined && filter.minSeverity === undefined;
  const scan = await scanJournals({
    dir: opts.dir,
    journals: journalsForFilter(filter),
    skipCorrupt: opts.skipCorrupt,
    warn: opts.warn,
    reuseBuffers: true,
    // Most lines need only seq, kind, node and time: their bodies are not parsed unless read.
    lazyBodies: true,
    visit: unfiltered ? (e) => acc.add(e.envelope) : (e) => (matchesFilter(e.envelope, filter) ? acc.add(e.envelope) : undefined),
  });
  return { ...acc.report(), skipped_corrupt: scan.skippedCorrupt, torn_tails: scan.tornTails };
}
