/**
 * Bodies of the agent API (shared by the agent that sends them and the center that validates them).
 */
import { z } from 'zod';
import { idSchema, nodeIdSchema, rfc3339Schema } from './envelope.js';
import { hexKeySchema, keyIdSchema } from './hex.js';

export { hexKeySchema };
export const osProfileSchema = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,31}$/, 'must be 1-32 of a-z 0-9 . _ -');
/**
 * Node-controlled text that operators read in a terminal and the console: visible characters only. `\p{C}` is every
 * control (C0, DEL, C1), format character (bidi overrides, zero-width), surrogate, private-use and unassigned code
 * point, so neither an escape sequence nor text that displays differently from what it is gets in.
 */
const VISIBLE = /^[^\s\p{C}]+$/u;
export const hostnameSchema = z.string().min(1).max(253).regex(VISIBLE, 'must be visible characters only (no whitespace, control or format characters)');
export const agentVersionSchema = z.string().min(1).max(64).regex(VISIBLE, 'must be visible characters only (no whitespace, control or format characters)');
export const unitNameSchema = z.string().regex(/^[A-Za-z0-9@._:-]{1,128}$/, 'must be a systemd unit name');

const nonNegative = z.number().finite().nonnegative();

export const factsSchema = z
  .record(z.string().max(64), z.union([z.string().max(512), z.number().finite(), z.boolean(), z.null()]))
  .refine((r) => Object.keys(r).length <= 64, 'at most 64 facts');

export const enrollRequestSchema = z
  .object({
    token: z.string().min(16).max(256),
    node_id: nodeIdSchema,
    hostname: hostnameSchema,
    os_profile: osProfileSchema,
    public_key: hexKeySchema,
    agent_version: agentVersionSchema,
    facts: factsSchema.default({}),
  })
  .strict();
export type EnrollRequest = z.infer<typeof enrollRequestSchema>;

export const metricsSchema = z
  .object({
    load: z.tuple([nonNegative, nonNegative, nonNegative]),
    mem_used_bytes: nonNegative,
    mem_total_bytes: nonNegative,
    disk_used_bytes: nonNegative,
    disk_total_bytes: nonNegative,
    uptime_s: nonNegative,
  })
  .strict();
export type HostMetrics = z.infer<typeof metricsSchema>;

const treeSizeSchema = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/**
 * What an agent tells the center about one ledger it witnesses (docs/LEDGER.md, "Agents as witnesses"): the size of
 * the checkpoint it last accepted, its cosignature line on it, and the fork it saw if the center showed it a tree
 * that does not extend that checkpoint.
 */
export const witnessReportSchema = z
  .object({
    tree_size: treeSizeSchema,
    cosignature: z.string().min(1).max(512).optional(),
    fork: z
      .object({ reason: z.enum(['smaller', 'different-root', 'bad-proof']), message: z.string().max(500), seen_size: treeSizeSchema })
      .strict()
      .optional(),
  })
  .strict();
export type WitnessReport = z.infer<typeof witnessReportSchema>;
export const witnessReportsSchema = z.object({ scans: witnessReportSchema.optional(), commands: witnessReportSchema.optional() }).strict();

/** What the center hands a witnessing agent per ledger: the latest checkpoint and the proof from the agent's size. */
export const ledgerOfferSchema = z
  .object({
    checkpoint: z.string().min(1).max(16_384),
    from_size: treeSizeSchema,
    proof: z.array(hexKeySchema).max(128),
  })
  .strict();
export type LedgerOffer = z.infer<typeof ledgerOfferSchema>;
export const ledgerOffersSchema = z.object({ scans: ledgerOfferSchema.optional(), commands: ledgerOfferSchema.optional() }).strict();

/**
 * What the agent tells the center of its offline outbox in each heartbeat, so the center can say how many buffered
 * entries a node delivered when it came back (the `rejoin` envelope). `queued`: entries still waiting behind this
 * heartbeat; `delivered`: buffered entries (heartbeats and scans) delivered since the agent last reported an empty
 * outbox, this heartbeat included when it came from the outbox.
 */
export const outboxReportSchema = z
  .object({ queued: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER), delivered: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER) })
  .strict();
export type OutboxReport = z.infer<typeof outboxReportSchema>;

export const heartbeatSchema = z
  .object({
    /** Agent-chosen id: a retried heartbeat (offline outbox) is recognised and stored once. */
    id: idSchema.optional(),
    node_id: nodeIdSchema,
    hostname: hostnameSchema,
    os_profile: osProfileSchema,
    cloudflare_ok: z.boolean(),
    services_ok: z.boolean(),
    vaultmesh_root: z.string().min(1).max(4096),
    timestamp: rfc3339Schema,
    agent_version: agentVersionSchema,
    metrics: metricsSchema,
    services: z
      .record(unitNameSchema, z.string().max(32))
      .refine((r) => Object.keys(r).length <= 64, 'at most 64 services')
      .optional(),
    witness: witnessReportsSchema.optional(),
    /** The center keys the agent trusts for commands (key ids): the center offers the rotations it lacks. */
    center_key_ids: z.array(keyIdSchema).max(16).optional(),
    /** The agent's offline outbox as this heartbeat was posted (docs/PROTOCOL.md, "Outbox report"); absent from older agents. */
    outbox: outboxReportSchema.optional(),
  })
  .strict();
export type Heartbeat = z.infer<typeof heartbeatSchema>;

/** The center keys an enrollment or heartbeat answer offers (`center_keys`); each key id must match its key. */
export const centerKeysSchema = z
  .array(z.object({ public_key: hexKeySchema, key_id: keyIdSchema }).strict())
  .max(16);

/** What the agent reads of `POST /api/agent/heartbeat`'s answer. */
export const heartbeatAnswerSchema = z.looseObject({ seq: z.number().int().nonnegative(), center_keys: centerKeysSchema.optional(), ledger: ledgerOffersSchema.optional() });

/** What the agent reads of `POST /api/agent/enroll`'s answer. */
export const enrollAnswerSchema = z.looseObject({ status: z.enum(['pending', 'approved']), center_keys: centerKeysSchema.optional() });
