/**
 * The event envelope: every fact the center knows is one of these, one canonical JSON line in a journal.
 * `seq` is global and increasing, assigned by the center; `author` comes from the authenticated identity.
 */
import { z } from 'zod';
import { ENVELOPE_VERSION } from './envelope-shape.js';

// The zod-free half (version, journal table, replay's structural check) lives in envelope-shape.ts, for readers
// that parse no foreign input (the journal module, the offline `vaultmesh logs`).
export { ENVELOPE_VERSION, JOURNAL_FILES, journalForKind, looksLikeEnvelope, type JournalName } from './envelope-shape.js';

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
