/**
 * The registry of event kinds that operators, bots and agents may post to `POST /api/events`: one strict, bounded
 * zod schema per kind. Kinds the center produces itself (heartbeat, scan, command, receipt, enrollment, attention,
 * join_token, audit …) are reserved and never accepted from a client. Extending the registry means adding one entry
 * to `EVENT_KINDS`; everything else (validation, docs listing, route) follows from it.
 */
import { z } from 'zod';
import { canonicalJson } from './canonical-json.js';
import { idSchema } from './envelope.js';
import { ACTIONABLE_SEVERITIES, type ActionableSeverity } from './scan.js';

export const EVENT_LIMITS = {
  /** Nesting depth of a body (the body object itself is depth 1). */
  depth: 8,
  /** Canonical JSON bytes of a body. */
  bodyBytes: 16 * 1024,
  text: 4096,
  title: 200,
  description: 8192,
  tagsPerChange: 32,
  tag: 64,
  noteExtraKeys: 32,
} as const;

export const INCIDENT_SEVERITIES = ACTIONABLE_SEVERITIES;
export type IncidentSeverity = ActionableSeverity;
export const INCIDENT_STATUSES = ['open', 'acknowledged', 'resolved'] as const;
export type IncidentStatus = (typeof INCIDENT_STATUSES)[number];

/** Labels on a node: short, no whitespace, usable in a URL query (`env=prod`, `rack:b12`, `gpu`). */
export const tagSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:=/@+-]{0,63}$/, 'must be 1-64 of A-Z a-z 0-9 . _ : = / @ + - starting with a letter or digit');

const text = (max: number) => z.string().min(1).max(max);

export const noteBodySchema = z
  .object({ text: text(EVENT_LIMITS.text) })
  // A note may carry a few extra fields for the bot that wrote it (links, source ids); depth and size are bounded
  // for the whole body below.
  .catchall(z.unknown())
  .refine((b) => Object.keys(b).length <= EVENT_LIMITS.noteExtraKeys + 1, `at most ${EVENT_LIMITS.noteExtraKeys} extra fields`);

export const incidentBodySchema = z
  .object({
    title: text(EVENT_LIMITS.title),
    severity: z.enum(INCIDENT_SEVERITIES),
    status: z.enum(INCIDENT_STATUSES).default('open'),
    description: z.string().max(EVENT_LIMITS.description).optional(),
  })
  .strict();

export const ackBodySchema = z.object({ incident_id: idSchema, text: text(EVENT_LIMITS.text).optional() }).strict();
export const resolveBodySchema = ackBodySchema;

const tagList = z.array(tagSchema).max(EVENT_LIMITS.tagsPerChange);
export const tagBodySchema = z
  .object({ add: tagList.optional(), remove: tagList.optional() })
  .strict()
  .refine((b) => (b.add?.length ?? 0) + (b.remove?.length ?? 0) > 0, 'add or remove at least one tag');

export interface EventKindSpec {
  schema: z.ZodType<Record<string, unknown>>;
  /** The envelope must name a node (`node_id`). */
  requiresNode: boolean;
  /** One line for docs and error messages. */
  summary: string;
}

export const EVENT_KINDS = {
  note: { schema: noteBodySchema, requiresNode: false, summary: 'free text, optionally about a node' },
  incident: { schema: incidentBodySchema, requiresNode: false, summary: 'something is wrong: title, severity, status' },
  ack: { schema: ackBodySchema, requiresNode: false, summary: 'someone is on an open incident' },
  resolve: { schema: resolveBodySchema, requiresNode: false, summary: 'an incident is over' },
  tag: { schema: tagBodySchema, requiresNode: true, summary: 'add or remove labels on a node' },
} as const satisfies Record<string, EventKindSpec>;

export type ClientEventKind = keyof typeof EVENT_KINDS;
export type NoteBody = z.infer<typeof noteBodySchema>;
export type IncidentBody = z.infer<typeof incidentBodySchema>;
export type AckBody = z.infer<typeof ackBodySchema>;
export type ResolveBody = z.infer<typeof resolveBodySchema>;
export type TagBody = z.infer<typeof tagBodySchema>;

/** The discriminated union of client events after validation. */
export type ClientEvent =
  | { kind: 'note'; body: NoteBody }
  | { kind: 'incident'; body: IncidentBody }
  | { kind: 'ack'; body: AckBody }
  | { kind: 'resolve'; body: ResolveBody }
  | { kind: 'tag'; body: TagBody };

export function isClientEventKind(kind: string): kind is ClientEventKind {
  return Object.hasOwn(EVENT_KINDS, kind);
}

/** Depth of a JSON value: scalars 0, `{}` / `[]` 1, `{a:{}}` 2 … Stops counting past `limit`. */
export function jsonDepth(value: unknown, limit = 64): number {
  if (typeof value !== 'object' || value === null) return 0;
  if (limit <= 0) return 1;
  let max = 0;
  for (const v of Array.isArray(value) ? value : Object.values(value)) {
    const d = jsonDepth(v, limit - 1);
    if (d > max) max = d;
  }
  return 1 + max;
}

export type EventIssue = { path: string; message: string };

/**
 * Validates a client event body for `kind`. Returns the typed event or a list of issues (never throws on input).
 * Checks, in order: the kind is in the registry, the body is an object of bounded depth and canonical size, the
 * kind's schema, and whether the kind needs a node.
 */
export function validateClientEvent(kind: string, body: unknown, nodeId?: string): { ok: true; event: ClientEvent } | { ok: false; code: 'UNKNOWN_KIND' | 'VALIDATION_ERROR'; issues: EventIssue[] } {
  if (!isClientEventKind(kind)) {
    return {
      ok: false,
      code: 'UNKNOWN_KIND',
      issues: [{ path: 'kind', message: `kind "${kind}" cannot be posted; accepted kinds: ${Object.keys(EVENT_KINDS).join(', ')}` }],
    };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, code: 'VALIDATION_ERROR', issues: [{ path: 'body', message: 'must be a JSON object' }] };
  }
  if (jsonDepth(body, EVENT_LIMITS.depth + 1) > EVENT_LIMITS.depth) {
    return { ok: false, code: 'VALIDATION_ERROR', issues: [{ path: 'body', message: `nested deeper than ${EVENT_LIMITS.depth} levels` }] };
  }
  let size: number;
  try {
    size = Buffer.byteLength(canonicalJson(body));
  } catch (err) {
    return { ok: false, code: 'VALIDATION_ERROR', issues: [{ path: 'body', message: `not representable as JSON: ${(err as Error).message}` }] };
  }
  if (size > EVENT_LIMITS.bodyBytes) {
    return { ok: false, code: 'VALIDATION_ERROR', issues: [{ path: 'body', message: `canonical JSON is ${size} bytes, at most ${EVENT_LIMITS.bodyBytes}` }] };
  }
  const spec: EventKindSpec = EVENT_KINDS[kind];
  const parsed = spec.schema.safeParse(body);
  if (!parsed.success) {
    return { ok: false, code: 'VALIDATION_ERROR', issues: parsed.error.issues.slice(0, 20).map((i) => ({ path: ['body', ...i.path.map(String)].join('.'), message: i.message })) };
  }
  if (spec.requiresNode && nodeId === undefined) {
    return { ok: false, code: 'VALIDATION_ERROR', issues: [{ path: 'node_id', message: `kind "${kind}" needs a node_id` }] };
  }
  return { ok: true, event: { kind, body: parsed.data } as ClientEvent };
}
