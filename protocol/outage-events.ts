/**
 * Bodies of the `offline` and `rejoin` envelopes the center journals about a node's outages (events.jsonl, with
 * `node_id` set). The center writes them itself (command-center/fleet/outage-monitor.ts), never a client.
 * Seqs and times name the node's heartbeats as journaled, so a reader can fetch them (`GET /api/events/:seq`).
 */
import { z } from 'zod';
import { rfc3339Schema } from './envelope.js';

const seqSchema = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const secondsSchema = z.number().finite().nonnegative();

export const offlineBodySchema = z
  .object({
    /** The node's last heartbeat before the silence: its envelope seq and journal time. */
    last_heartbeat_seq: seqSchema,
    last_heartbeat_ts: rfc3339Schema,
    /** How long the node had been silent when the center declared it offline. */
    silent_s: secondsSchema,
    /** The silence after which a node is offline (offline-after × heartbeat interval), as configured then. */
    threshold_s: secondsSchema,
    /** When it became due: last heartbeat + threshold. */
    due_at: rfc3339Schema,
    /**
     * True when it became due before the declaring center was running (or leading): the node went silent while the
     * center was down, and this was journaled at start-up rather than when it happened.
     */
    declared_late: z.boolean(),
  })
  .strict();
export type OfflineBody = z.infer<typeof offlineBodySchema>;

/** What the agent said of its offline outbox when the rejoin was journaled. */
export const REJOIN_OUTBOX = ['drained', 'interrupted', 'unknown'] as const;

export const rejoinBodySchema = z
  .object({
    /** The `offline` envelope this return ends. */
    offline_seq: seqSchema,
    last_heartbeat_seq: seqSchema,
    last_heartbeat_ts: rfc3339Schema,
    /** The first heartbeat journaled after the outage. */
    first_heartbeat_seq: seqSchema,
    first_heartbeat_ts: rfc3339Schema,
    /** first_heartbeat_ts − last_heartbeat_ts, in seconds. */
    gap_s: secondsSchema,
    /**
     * Entries (heartbeats and scan reports) the agent had buffered in its outbox and delivered on return; null when
     * the agent does not report it (an agent older than this field): unknown, not zero.
     */
    delivered: z.number().int().nonnegative().nullable(),
    /**
     * `drained`: the agent reported its outbox empty (the count is the whole backlog); `interrupted`: the node went
     * silent again before it drained (the count is what arrived); `unknown`: the agent does not report its outbox.
     */
    outbox: z.enum(REJOIN_OUTBOX),
  })
  .strict();
export type RejoinBody = z.infer<typeof rejoinBodySchema>;
