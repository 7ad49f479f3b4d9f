/**
 * Retention for the heartbeat journal, the one that grows (≈ 9 GB/day at 10,000 nodes × 30 s).
 *
 * - Rotation: when `heartbeats.jsonl` passes a size, the journal renames it to `heartbeats-<lastSeq>.jsonl` (the
 *   segment names live in the journal module, lib/journal/files.ts) and starts a new one.
 * - Summary: at each rotation the center writes `heartbeats.summary.json`, holding what old heartbeats contribute to
 *   state that the recent ones cannot rebuild: per node `first_seen`, `heartbeat_count` and its last heartbeat up to
 *   `through_seq` (a node silent since before the segment replay starts from still has its last-seen time, metrics
 *   and one history sample after a restart; version 1 summaries, without it, still read).
 * - Replay reads the summary, the newest segment at or below `through_seq` (to refill the 120-sample histories), the
 *   segments after it, and the active file. It does not read months of heartbeats.
 * - Retention deletes whole segments older than N days. Scans, commands and events are never rotated away (the
 *   ledger spans them).
 */
import { readFileSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomicSync } from '../../lib/atomic-file.js';
import { createLatestFileWriter, type LatestFileWriter } from '../../lib/latest-file-writer.js';
import { listSegments, type Segment } from '../../lib/journal/index.js';
import type { Heartbeat } from '../../protocol/agent-api.js';
import { takeLastHeartbeat, type FleetState } from '../fleet/fleet-state.js';

export const SUMMARY_FILE = 'heartbeats.summary.json';

/** A node's newest heartbeat at `through_seq`: its seq, journal time and body (validated when it was journaled). */
const lastHeartbeatSchema = z.object({ seq: z.number().int().positive(), ts: z.string(), body: z.looseObject({}) });

const summarySchema = z.object({
  v: z.union([z.literal(1), z.literal(2)]),
  through_seq: z.number().int().nonnegative(),
  total: z.number().int().nonnegative(),
  nodes: z.record(
    z.string(),
    z.object({ first_seen: z.string().nullable(), heartbeat_count: z.number().int().nonnegative(), last: lastHeartbeatSchema.optional() }),
  ),
});
export type HeartbeatSummary = z.infer<typeof summarySchema>;

export function readSummary(dir: string): HeartbeatSummary | undefined {
  let text: string;
  try {
    text = readFileSync(join(dir, SUMMARY_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parseSummary(text);
}

export function parseSummary(text: string): HeartbeatSummary {
  return summarySchema.parse(JSON.parse(text));
}

/** What state knows of heartbeats up to `throughSeq` (called right after a rotation, when that is all of them). */
export function summarize(state: FleetState, throughSeq: number): HeartbeatSummary {
  const nodes: HeartbeatSummary['nodes'] = {};
  for (const n of state.nodes.values()) {
    const last = n.last_heartbeat && n.last_heartbeat_seq !== undefined && n.last_seen ? { seq: n.last_heartbeat_seq, ts: n.last_seen, body: n.last_heartbeat } : undefined;
    nodes[n.node_id] = { first_seen: n.first_seen ?? null, heartbeat_count: n.heartbeat_count, ...(last ? { last } : {}) };
  }
  return { v: 2, through_seq: throughSeq, total: state.counts.heartbeat ?? 0, nodes };
}

export function writeSummary(dir: string, summary: HeartbeatSummary): void {
  writeFileAtomicSync(join(dir, SUMMARY_FILE), JSON.stringify(summary), 0o640);
}

/**
 * The summary file written off the event loop (≈ 6 MB at 10,000 nodes, two fsyncs: tens to hundreds of ms on a busy
 * disk, which on the loop held every request). A newer rotation's summary supersedes one still waiting.
 */
export function createSummaryWriter(dir: string): LatestFileWriter {
  return createLatestFileWriter(join(dir, SUMMARY_FILE), 0o640);
}

/**
 * The heartbeat segments replay must read: with no summary, all of them. With a summary, the newest segment at or
 * below `through_seq` (for histories) and everything after it.
 */
export function segmentsToReplay(segments: Segment[], summary: HeartbeatSummary | undefined): Segment[] {
  if (!summary) return segments;
  let start = 0;
  for (let i = 0; i < segments.length; i++) if (segments[i]!.lastSeq <= summary.through_seq) start = i;
  return segments.slice(start);
}

/**
 * After replay: counts and first-seen times come from the summary plus the heartbeats replayed after it.
 * `replayedUpTo` counts, per node, the replayed heartbeats with seq ≤ through_seq (already in the summary).
 */
export function applySummary(state: FleetState, summary: HeartbeatSummary, replayedUpTo: Map<string, number>, replayedTotalUpTo: number): void {
  for (const [id, s] of Object.entries(summary.nodes)) {
    const node = state.nodes.get(id);
    if (!node) continue;
    node.heartbeat_count = s.heartbeat_count + node.heartbeat_count - (replayedUpTo.get(id) ?? 0);
    if (s.first_seen) node.first_seen = s.first_seen;
    // Silent since before the replayed segments: nothing replayed told its last heartbeat, the summary does.
    if (s.last && node.last_heartbeat_seq === undefined) takeLastHeartbeat(node, s.last.seq, s.last.ts, s.last.body as unknown as Heartbeat);
  }
  state.counts.heartbeat = summary.total + (state.counts.heartbeat ?? 0) - replayedTotalUpTo;
}

/** Deletes closed segments whose newest heartbeat is older than `maxAgeMs` (by file mtime). Returns the deleted paths. */
export function pruneSegments(dir: string, maxAgeMs: number, nowMs: number): string[] {
  const deleted: string[] = [];
  const segments = listSegments(dir);
  // The newest segment always stays: replay reads it to refill histories.
  for (const seg of segments.slice(0, -1)) {
    if (nowMs - statSync(seg.path).mtimeMs > maxAgeMs) {
      unlinkSync(seg.path);
      deleted.push(seg.path);
    }
  }
  return deleted;
}
