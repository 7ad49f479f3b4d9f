/**
 * The event envelope: every fact the center knows is one of these, one canonical JSON line in a journal.
 * `seq` is global and increasing, assigned by the center; `author` comes from the authenticated identity.
 */
import { z } from 'zod';

export const ENVELOPE_VERSION = 1 as const;

/** Ids that are safe in URLs, file names and log lines (no path traversal, no whitespace). */
export const idSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'must be 1-128 of A-Z a-z 0-9 . _ : - starting with a letter or digit');
export const nodeIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be 1-63 of A-Z a-z 0-9 . _ - starting with a letter or digit');
export const kindSchema = z.string().regex(/^[a-z][a-z0-9_.-]{0,63}$/, 'must be lowercase letters, digits, _ . -');
export const rfc3339Schema = z.iso.datetime({ offset: true });

export const envelopeSchema = z.object({
  v: z.literal(ENVELOPE_VERSION),
  id: idSchema,
  seq: z.number().int().positive(),
  ts: rfc3339Schema,
  kind: kindSchema,
  node_id: nodeIdSchema.optional(),
  author: z.string().min(1).max(256),
  on_behalf_of: z.string().min(1).max(256).optional(),
  body: z.record(z.string(), z.unknown()),
});

export type Envelope<B = Record<string, unknown>> = Omit<z.infer<typeof envelopeSchema>, 'body'> & { body: B };

/** What a producer hands the journal: the center fills in v, seq and ts (and id when the producer has none). */
export type EnvelopeDraft<B = Record<string, unknown>> = {
  id?: string;
  kind: string;
  node_id?: string;
  author: string;
  on_behalf_of?: string;
  body: B;
};

export const JOURNAL_FILES = {
  heartbeats: 'heartbeats.jsonl',
  scans: 'sovereign-scans.jsonl',
  commands: 'commands.jsonl',
  events: 'events.jsonl',
} as const;

export type JournalName = keyof typeof JOURNAL_FILES;

/** Which journal an envelope kind belongs to (the table in docs/EVENT_ENVELOPE.md, "Journals"). */
export function journalForKind(kind: string): JournalName {
  switch (kind) {
    case 'heartbeat':
      return 'heartbeats';
    case 'scan':
      return 'scans';
    case 'command':
    case 'receipt':
      return 'commands';
    default:
      return 'events';
  }
}

/**
 * Cheap structural check used on replay, where the journal is our own output and a full zod parse per line would
 * dominate start-up time. Anything failing it is a corrupt line.
 */
export function looksLikeEnvelope(value: unknown): value is Envelope {
  if (typeof value !== 'object' || value === null) return false;
  const e = value as Record<string, unknown>;
  return (
    e.v === ENVELOPE_VERSION &&
    typeof e.id === 'string' &&
    Number.isSafeInteger(e.seq) &&
    (e.seq as number) > 0 &&
    typeof e.ts === 'string' &&
    typeof e.kind === 'string' &&
    typeof e.author === 'string' &&
    typeof e.body === 'object' &&
    e.body !== null &&
    !Array.isArray(e.body) &&
    (e.node_id === undefined || typeof e.node_id === 'string')
  );
}
