/**
 * What a journal reader needs of the envelope without its zod schemas: the version, the journal files and which
 * kind goes where, and the structural check replay uses. protocol/envelope.ts re-exports all of it; the journal
 * module (lib/journal/) and the offline `vaultmesh logs` import this module so a pass over the journals does not
 * load zod (≈ 12 MB of RSS before the first line) when no flag needs a schema.
 */
import type { Envelope } from './envelope.js';

export const ENVELOPE_VERSION = 1 as const;

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
