/**
 * Maintenance windows as `maintenance` envelopes (events.jsonl): a window is `started` by an operator for one node, an
 * os_profile or a tag, with a reason, a start and an end; it may be `extended`, and it is `ended` either early by an
 * operator or by the center when its end time has passed. The state a window stands for (which nodes it covers, what
 * it silenced) is derived from these alone (command-center/ops/maintenance.ts).
 */
import { z } from 'zod';
import { idSchema, nodeIdSchema, rfc3339Schema } from './envelope.js';
import { osProfileSchema } from './agent-api.js';
import { tagSchema } from './event-kinds.js';

export const MAINTENANCE_LIMITS = {
  reason: 1024,
  /** Longest window, start to end (30 days): longer silences are standing policy, not maintenance. */
  maxDurationSecs: 30 * 86_400,
  /** How far ahead a window may be scheduled to start. */
  maxLeadSecs: 90 * 86_400,
} as const;

/** What scheduled scans of covered nodes do during the window: dropped (`skip`) or run once it ends (`defer`). */
export const MAINTENANCE_SCAN_RULES = ['skip', 'defer'] as const;
export type MaintenanceScanRule = (typeof MAINTENANCE_SCAN_RULES)[number];

/** Exactly one of node_id, os_profile, tag. */
export const maintenanceTargetSchema = z.union([
  z.object({ node_id: nodeIdSchema }).strict(),
  z.object({ os_profile: osProfileSchema }).strict(),
  z.object({ tag: tagSchema }).strict(),
]);
export type MaintenanceTarget = z.infer<typeof maintenanceTargetSchema>;

export const maintenanceIdSchema = idSchema;

const reasonSchema = z
  .string()
  .trim()
  .min(1, 'a reason is required')
  .max(MAINTENANCE_LIMITS.reason)
  .regex(/^[^\u0000-\u0008\u000b-\u001f\u007f]+$/, 'must not contain control characters');

export const maintenanceStartedSchema = z
  .object({
    event: z.literal('started'),
    window_id: maintenanceIdSchema,
    target: maintenanceTargetSchema,
    reason: reasonSchema,
    starts_at: rfc3339Schema,
    ends_at: rfc3339Schema,
    scans: z.enum(MAINTENANCE_SCAN_RULES),
  })
  .strict();
export const maintenanceExtendedSchema = z.object({ event: z.literal('extended'), window_id: maintenanceIdSchema, ends_at: rfc3339Schema }).strict();
/** `early`: an operator ended it before its end time; false when the center closed it at its end time. */
export const maintenanceEndedSchema = z.object({ event: z.literal('ended'), window_id: maintenanceIdSchema, early: z.boolean() }).strict();

export const maintenanceBodySchema = z.discriminatedUnion('event', [maintenanceStartedSchema, maintenanceExtendedSchema, maintenanceEndedSchema]);
export type MaintenanceBody = z.infer<typeof maintenanceBodySchema>;

/** `2h`, `90m`, `1d12h`, `45s`: a duration for `--for`, in seconds; undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const m = /^(?:(\d{1,4})d)?(?:(\d{1,5})h)?(?:(\d{1,6})m)?(?:(\d{1,7})s)?$/.exec(text.trim());
  if (!m || text.trim() === '' || m.slice(1).every((g) => g === undefined)) return undefined;
  const [d, h, mi, s] = m.slice(1).map((g) => Number(g ?? 0)) as [number, number, number, number];
  return d * 86_400 + h * 3600 + mi * 60 + s;
}

/** `POST /api/maintenance`: a target, a reason, an end (`until` or `for_secs`), optionally a later start. */
export const maintenanceStartRequestSchema = z
  .object({
    node_id: nodeIdSchema.optional(),
    os_profile: osProfileSchema.optional(),
    tag: tagSchema.optional(),
    reason: reasonSchema,
    /** Defaults to now. */
    starts_at: rfc3339Schema.optional(),
    until: rfc3339Schema.optional(),
    for_secs: z.number().int().min(60).max(MAINTENANCE_LIMITS.maxDurationSecs).optional(),
    scans: z.enum(MAINTENANCE_SCAN_RULES).default('defer'),
  })
  .strict()
  .superRefine((v, ctx) => {
    const targets = [v.node_id, v.os_profile, v.tag].filter((t) => t !== undefined).length;
    if (targets !== 1) ctx.addIssue({ code: 'custom', path: ['node_id'], message: 'name exactly one target: node_id, os_profile or tag' });
    if ((v.until === undefined) === (v.for_secs === undefined)) ctx.addIssue({ code: 'custom', path: ['until'], message: 'give the end as exactly one of until (RFC 3339) or for_secs' });
  });
export type MaintenanceStartRequest = z.output<typeof maintenanceStartRequestSchema>;

export const maintenanceExtendRequestSchema = z
  .object({ until: rfc3339Schema.optional(), for_secs: z.number().int().min(60).max(MAINTENANCE_LIMITS.maxDurationSecs).optional() })
  .strict()
  .refine((v) => (v.until === undefined) !== (v.for_secs === undefined), { message: 'give the new end as exactly one of until (RFC 3339) or for_secs (from now)', path: ['until'] });

export function describeTarget(t: MaintenanceTarget): string {
  if ('node_id' in t) return `node ${t.node_id}`;
  if ('os_profile' in t) return `profile ${t.os_profile}`;
  return `tag ${t.tag}`;
}
