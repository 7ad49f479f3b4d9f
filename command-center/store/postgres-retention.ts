/**
 * Heartbeat retention for the PostgreSQL store, with the JSONL store's meaning (heartbeat-segments.ts): heartbeats
 * older than `--heartbeat-retention-days` are deleted, and what they contributed to the fleet state that the kept
 * ones cannot rebuild (per node `first_seen` and `heartbeat_count`, the total) survives in `heartbeat_summary` up to
 * `through_seq`, so a replay after the deletion ends in the same state.
 *
 * Per run (the leader's, hourly): the summary is advanced to the newest heartbeat older than the cutoff, in one
 * transaction computed from the rows themselves (summary of the previous run + the rows after it), then rows at or
 * below `through_seq` are deleted in batches. Each node's newest `keepPerNode` heartbeats stay (the history size:
 * its history, last heartbeat and last-seen time replay as before), as the JSONL store keeps its newest segment.
 * Replay counts the kept rows below `through_seq` once (center.ts, heartbeat summary projection), so a run cut off
 * between batches is still exact; the next run finishes the deletes.
 *
 * Scans, commands and events are never deleted (the ledgers span them).
 */
import pg from 'pg';
import type { Logger } from '../../lib/logger.js';
import { realTimers, type Timers } from '../../lib/timers.js';
import { parseSummary, type HeartbeatSummary } from './heartbeat-segments.js';

export interface HeartbeatRetentionOptions {
  url: string;
  days: number;
  /** Newest heartbeats kept per node whatever their age (the history size). */
  keepPerNode: number;
  /** The nodes whose heartbeats are kept that way (the fleet state's). */
  nodes: () => Iterable<string>;
  now: () => Date;
  log: Logger;
  timers?: Timers;
  intervalMs?: number;
  /** Rows per DELETE statement (each its own transaction, so vacuum and replicas keep up). */
  batch?: number;
}

export interface HeartbeatRetention {
  /** One pass: advance the summary, delete what it covers. */
  runOnce(): Promise<{ throughSeq: number; deleted: number }>;
  start(): void;
  stop(): Promise<void>;
}

export function createPostgresHeartbeatRetention(opts: HeartbeatRetentionOptions): HeartbeatRetention {
  const timers = opts.timers ?? realTimers;
  const batch = opts.batch ?? 5000;
  let timer: unknown;
  let running: Promise<unknown> | undefined;

  async function runOnce(): Promise<{ throughSeq: number; deleted: number }> {
    const client = new pg.Client({ connectionString: opts.url, application_name: 'vaultmesh-cc retention', query_timeout: 120_000 });
    // A connection lost between two statements is an 'error' event; without a listener it would end the process.
    client.on('error', (err) => opts.log.warn(`heartbeat retention: connection lost: ${err.message}`));
    await client.connect();
    try {
      const cutoff = new Date(opts.now().getTime() - opts.days * 86_400_000).toISOString();
      await client.query('BEGIN');
      let summary: HeartbeatSummary;
      try {
        const prev = await client.query<{ summary: string }>('SELECT summary FROM heartbeat_summary FOR UPDATE');
        summary = prev.rows[0] ? parseSummary(prev.rows[0].summary) : { v: 1, through_seq: 0, total: 0, nodes: {} };
        const upTo = await client.query<{ s: string | null }>("SELECT max(seq) AS s FROM envelopes WHERE journal = 'heartbeats' AND ts < $1", [cutoff]);
        const through = Number(upTo.rows[0]?.s ?? 0);
        if (through > summary.through_seq) {
          const added = await client.query<{ node_id: string | null; n: string; first: Date }>(
            "SELECT node_id, count(*) AS n, min(ts) AS first FROM envelopes WHERE journal = 'heartbeats' AND seq > $1 AND seq <= $2 GROUP BY node_id",
            [summary.through_seq, through],
          );
          const nodes = { ...summary.nodes };
          let total = summary.total;
          for (const row of added.rows) {
            const n = Number(row.n);
            total += n;
            if (row.node_id === null) continue;
            const was = nodes[row.node_id];
            nodes[row.node_id] = { first_seen: was?.first_seen ?? row.first.toISOString(), heartbeat_count: (was?.heartbeat_count ?? 0) + n };
          }
          summary = { v: 1, through_seq: through, total, nodes };
          await client.query('INSERT INTO heartbeat_summary (one, summary) VALUES (true, $1) ON CONFLICT (one) DO UPDATE SET summary = EXCLUDED.summary', [JSON.stringify(summary)]);
        }
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
      if (summary.through_seq === 0) return { throughSeq: 0, deleted: 0 };
      // Per node, the seq of its `keepPerNode`-th newest heartbeat: rows from it on stay (0: fewer than that, all stay).
      const ids = [...opts.nodes()];
      const keep = await client.query<{ id: string; from_seq: string | null }>(
        `SELECT n.id, (SELECT seq FROM envelopes e WHERE e.node_id = n.id AND e.journal = 'heartbeats' ORDER BY seq DESC OFFSET $2 LIMIT 1) AS from_seq
         FROM unnest($1::text[]) AS n(id)`,
        [ids, Math.max(0, opts.keepPerNode - 1)],
      );
      const keepIds = keep.rows.map((r) => r.id);
      const keepFrom = keep.rows.map((r) => Number(r.from_seq ?? 0));
      let deleted = 0;
      for (;;) {
        const r = await client.query(
          `WITH keep(node_id, from_seq) AS (SELECT * FROM unnest($2::text[], $3::bigint[])),
           victims AS (
             SELECT e.seq FROM envelopes e LEFT JOIN keep k ON k.node_id = e.node_id
             WHERE e.journal = 'heartbeats' AND e.seq <= $1 AND (k.node_id IS NULL OR (k.from_seq > 0 AND e.seq < k.from_seq))
             ORDER BY e.seq LIMIT $4)
           DELETE FROM envelopes WHERE seq IN (SELECT seq FROM victims)`,
          [summary.through_seq, keepIds, keepFrom, batch],
        );
        deleted += r.rowCount ?? 0;
        if ((r.rowCount ?? 0) < batch) break;
      }
      if (deleted > 0) opts.log.info(`retention: deleted ${deleted} heartbeats up to seq ${summary.through_seq} (older than ${opts.days} days; summarised)`);
      return { throughSeq: summary.through_seq, deleted };
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  const tick = () => {
    running ??= runOnce()
      .catch((err) => opts.log.warn(`retention: ${(err as Error).message}`))
      .finally(() => {
        running = undefined;
      });
  };
  return {
    runOnce,
    start() {
      if (timer !== undefined) return;
      tick();
      timer = timers.setInterval(tick, opts.intervalMs ?? 3_600_000);
    },
    async stop() {
      if (timer !== undefined) timers.clearInterval(timer);
      timer = undefined;
      await running;
    },
  };
}
