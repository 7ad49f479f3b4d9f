/**
 * Bodies of the agent API (shared by the agent that sends them and the center that validates them).
 */
import { z } from 'zod';
import { idSchema, nodeIdSchema, rfc3339Schema } from './envelope.js';
import { hexKeySchema, keyIdSchema } from './hex.js';

export { hexKeySchema };
export const osProfileSchema = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,31}$/, 'must be 1-32 of a-z 0-9 . _ -');
export const hostnameSchema = z.string().min(1).max(253).regex(/^[^\s\u0000-\u001f]+$/, 'must not contain whitespace or control characters');
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
    agent_version: z.string().min(1).max(64),
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
    agent_version: z.string().min(1).max(64),
    metrics: metricsSchema,
    services: z
      .record(unitNameSchema, z.string().max(32))
      .refine((r) => Object.keys(r).length <= 64, 'at most 64 services')
      .optional(),
  })
  .strict();
export type Heartbeat = z.infer<typeof heartbeatSchema>;

/** The center keys an enrollment or heartbeat answer offers (`center_keys`); each key id must match its key. */
export const centerKeysSchema = z
  .array(z.object({ public_key: hexKeySchema, key_id: keyIdSchema }).strict())
  .max(16);

/** What the agent reads of `POST /api/agent/heartbeat`'s answer. */
export const heartbeatAnswerSchema = z.looseObject({ seq: z.number().int().nonnegative(), center_keys: centerKeysSchema.optional() });

/** What the agent reads of `POST /api/agent/enroll`'s answer. */
export const enrollAnswerSchema = z.looseObject({ status: z.enum(['pending', 'approved']), center_keys: centerKeysSchema.optional() });
