/**
 * The registry of every envelope kind the center journals: its body schema (zod), its journal, who writes it, and
 * one line for the docs. `readEnvelope` turns an `Envelope` into a discriminated union on `kind`, so reducers, the
 * console and the CLI read typed bodies instead of `Record<string, unknown>`.
 *
 * Validation happens at the edges: every route parses its input with the kind's schema before it is journaled, so a
 * journal line the center wrote is trusted on replay — `readEnvelope` checks only the kind. A full zod parse per
 * line would cost about 3× the JSON.parse of a heartbeat and dominate start-up (docs/EVENT_ENVELOPE.md, "Kinds").
 * `parseEnvelope` is the full check, for foreign input and tests.
 */
import type { z } from 'zod';
import type { Envelope, JournalName } from './envelope.js';
import { heartbeatSchema } from './agent-api.js';
import { scanReportSchema } from './scan.js';
import { signedReceiptSchema } from './command.js';
import { apiTokenBodySchema, attentionBodySchema, commandEventSchema, enrollmentBodySchema, joinTokenBodySchema } from './center-events.js';
import { EVENT_KINDS } from './event-kinds.js';
import { nodeKeyBodySchema } from './node-key-rotation.js';
import { centerKeyBodySchema } from './center-key-rotation.js';
import { offlineBodySchema, rejoinBodySchema } from './outage-events.js';
import { maintenanceBodySchema } from './maintenance.js';

export interface EnvelopeKindSpec {
  schema: z.ZodType;
  journal: JournalName;
  /** Who writes it: an agent (through an agent route), the center itself, or an operator/bot (`POST /api/events`). */
  writer: 'agent' | 'center' | 'client';
  summary: string;
}

export const ENVELOPE_KINDS = {
  heartbeat: { schema: heartbeatSchema, journal: 'heartbeats', writer: 'agent', summary: 'host metrics and service states, every heartbeat interval' },
  scan: { schema: scanReportSchema, journal: 'scans', writer: 'agent', summary: 'a sovereign scan report: findings and their summary' },
  command: { schema: commandEventSchema, journal: 'commands', writer: 'center', summary: 'a step in a signed command’s life: proposed, approved, denied, proposal_expired, issued, delivered, expired, completed' },
  receipt: { schema: signedReceiptSchema, journal: 'commands', writer: 'agent', summary: 'the signed receipt of a command, exactly as the node sent it' },
  enrollment: { schema: enrollmentBodySchema, journal: 'events', writer: 'center', summary: 'an enrollment request, or an operator’s approve / reject / revoke' },
  join_token: { schema: joinTokenBodySchema, journal: 'events', writer: 'center', summary: 'a join token created or revoked (only its hash is kept)' },
  api_token: { schema: apiTokenBodySchema, journal: 'events', writer: 'center', summary: 'a scoped API token created or revoked (only its hash is kept)' },
  node_key: { schema: nodeKeyBodySchema, journal: 'events', writer: 'center', summary: 'a node replaced its key: the statement signed by the old and the new key, and the old key’s overlap end' },
  center_key: { schema: centerKeyBodySchema, journal: 'events', writer: 'center', summary: 'a center key rotation: the statement signed by the old key and the new one' },
  attention: { schema: attentionBodySchema, journal: 'events', writer: 'center', summary: 'a node’s attention status changed (OK / ATTN / CRIT) with the reasons' },
  offline: { schema: offlineBodySchema, journal: 'events', writer: 'center', summary: 'a node went silent: declared offline once per outage, with its last heartbeat' },
  rejoin: { schema: rejoinBodySchema, journal: 'events', writer: 'center', summary: 'a node back after an outage: the gap and the buffered entries it delivered' },
  note: { schema: EVENT_KINDS.note.schema, journal: 'events', writer: 'client', summary: EVENT_KINDS.note.summary },
  incident: { schema: EVENT_KINDS.incident.schema, journal: 'events', writer: 'client', summary: EVENT_KINDS.incident.summary },
  ack: { schema: EVENT_KINDS.ack.schema, journal: 'events', writer: 'client', summary: EVENT_KINDS.ack.summary },
  resolve: { schema: EVENT_KINDS.resolve.schema, journal: 'events', writer: 'client', summary: EVENT_KINDS.resolve.summary },
  tag: { schema: EVENT_KINDS.tag.schema, journal: 'events', writer: 'client', summary: EVENT_KINDS.tag.summary },
  maintenance: { schema: maintenanceBodySchema, journal: 'events', writer: 'center', summary: 'a maintenance window started, extended or ended (silences alarms and webhooks of the nodes it covers)' },
} as const satisfies Record<string, EnvelopeKindSpec>;

export type EnvelopeKind = keyof typeof ENVELOPE_KINDS;
export const ENVELOPE_KIND_NAMES = Object.keys(ENVELOPE_KINDS) as EnvelopeKind[];
/** The body of kind K, as journaled (after defaults). */
export type BodyOf<K extends EnvelopeKind> = z.output<(typeof ENVELOPE_KINDS)[K]['schema']>;
/** An envelope of kind K with its typed body. */
export type EnvelopeOf<K extends EnvelopeKind> = Omit<Envelope, 'kind' | 'body'> & { kind: K; body: BodyOf<K> };
/** Any envelope of a known kind, discriminated on `kind`. */
export type KnownEnvelope = { [K in EnvelopeKind]: EnvelopeOf<K> }[EnvelopeKind];

export function isEnvelopeKind(kind: string): kind is EnvelopeKind {
  return Object.hasOwn(ENVELOPE_KINDS, kind);
}

/**
 * The typed view of a journaled envelope, or undefined for a kind this version does not know (a newer center's
 * line: readers skip it rather than fail). Trusts the body (see above); use `parseEnvelope` for foreign input.
 */
export function readEnvelope(env: Envelope): KnownEnvelope | undefined {
  return isEnvelopeKind(env.kind) ? (env as unknown as KnownEnvelope) : undefined;
}

export type ParsedEnvelope =
  | { ok: true; envelope: KnownEnvelope }
  | { ok: false; reason: 'unknown-kind' }
  | { ok: false; reason: 'invalid-body'; issues: Array<{ path: string; message: string }> };

/** The full check: the kind is known and the body fits its schema (defaults applied). */
export function parseEnvelope(env: Envelope): ParsedEnvelope {
  if (!isEnvelopeKind(env.kind)) return { ok: false, reason: 'unknown-kind' };
  const spec: EnvelopeKindSpec = ENVELOPE_KINDS[env.kind];
  const r = spec.schema.safeParse(env.body);
  if (!r.success) return { ok: false, reason: 'invalid-body', issues: r.error.issues.slice(0, 20).map((i) => ({ path: ['body', ...i.path.map(String)].join('.'), message: i.message })) };
  return { ok: true, envelope: { ...env, body: r.data } as unknown as KnownEnvelope };
}
