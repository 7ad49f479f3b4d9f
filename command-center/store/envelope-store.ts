/**
 * The storage seam: everything the center does with its history goes through one `EnvelopeStore`. The JSONL
 * store (jsonl-store.ts, the default) keeps the journals of the log dir; a PostgreSQL store is one more module
 * implementing this interface, with the same canonical lines and the same global seq.
 *
 * Contract:
 * - `replay` once, before anything else (`entryAt` may come before it): every stored envelope in seq order, or
 *   only those after a seq a state snapshot covers, with the backend's own recovery (for
 *   JSONL: torn tails set aside, corrupt lines refused or quarantined with `--repair`, old heartbeats summarised).
 * - `append` after replay: assigns the next global seq and the time, and resolves once the entries are durable,
 *   with their canonical line bytes (ledger leaf bytes). Concurrent appends share a group commit. The store hands
 *   each durable batch to `onCommit` (the commit fan-out) before any append of it resolves.
 * - `tail` reads what is stored after a point, oldest first, and `readNewestFirst` one journal from its end: what
 *   history pages, a follower or a second replica need. Neither sees an entry before it is durable.
 * - `readLines` gives one journal's stored lines, in order and unparsed: the ledgers hash them as they are.
 * - Claims (a store with `enforcesClaims`: PostgreSQL): an append may carry unique keys; the store takes them in the
 *   same transaction as the entries, or refuses the whole append with `ClaimTaken` when one is already taken (by
 *   any replica). A draft with an `id` whose (author, id) is already stored is refused the same way. This is how
 *   one-time rules hold across several replicas; a single-writer store (JSONL) leaves them to the center's memory.
 */
import { canonicalJson } from '../../protocol/canonical-json.js';
import { ENVELOPE_VERSION, journalForKind, type Envelope, type EnvelopeDraft, type JournalName } from '../../protocol/envelope.js';
import { VaultMeshError } from '../../protocol/errors.js';
import type { HeartbeatSummary } from './heartbeat-segments.js';

/** One stored envelope: the journal it belongs to and its line as stored (RFC 8785 canonical JSON, no newline). */
export interface Committed {
  envelope: Envelope;
  journal: JournalName;
  line: Buffer;
}

export interface ReplayReport {
  lastSeq: number;
  envelopes: number;
  tornTails: Array<{ file: string; movedTo: string; bytes: number }>;
  quarantined: Array<{ file: string; line: number; reason: string; movedTo: string }>;
  durationMs: number;
  /** Replay visited only entries after this seq (a state snapshot covered the rest); 0 for a full replay. */
  afterSeq: number;
}

/** Where replay starts: after a seq a state snapshot covers (center/state-snapshot), or at the beginning. */
export interface ReplayOptions {
  afterSeq?: number;
  /**
   * The store may hand every entry's `line` in a read buffer it reuses for the next ones: valid only during that
   * visit (the center's start-up replay sets it: its projections copy the one line they keep). Saves a fresh buffer
   * per read on a large log. A store whose lines are its own (PostgreSQL) ignores it.
   */
  reuseBuffers?: boolean;
}

/** Where `tail` starts: after a seq, or at the first entry at or after a time (ms). */
export type TailFrom = { afterSeq: number } | { tsMs: number };

export interface TailOptions {
  /** Only these journals (default: all). */
  journals?: readonly JournalName[];
  /** A stored entry that does not read back as an envelope: skip it (history pages) or throw JOURNAL_CORRUPT. */
  onCorrupt?: 'skip' | 'throw';
}

/**
 * A unique key an append takes with its entries (a join-token use, a node's enrollment generation, an
 * Idempotency-Key, a request nonce). Keys expire only when `expiresAtMs` is set; an expired key can be taken again.
 */
export interface Claim {
  key: string;
  expiresAtMs?: number;
}

export interface AppendOptions {
  /** Taken atomically with the entries (stores with `enforcesClaims`); the append is refused if one is taken. */
  claims?: readonly Claim[];
}

/**
 * An append refused because what it claims is already taken: `kind: 'id'` when an envelope with the draft's author
 * and id is already stored (`seq` is that envelope's), `kind: 'claim'` for a claim key (`seq`: the envelope that
 * took it, 0 for a claim taken on its own). Callers turn it into their own answer (a duplicate, USED_UP, ...).
 */
export class ClaimTaken extends VaultMeshError<'ID_CONFLICT'> {
  constructor(
    readonly kind: 'id' | 'claim',
    readonly key: string,
    readonly seq: number,
  ) {
    super('ID_CONFLICT', kind === 'id' ? `an envelope with this id is already stored (seq ${seq})` : `already taken: ${key}`);
  }
}

export const isClaimTaken = (err: unknown): err is ClaimTaken => err instanceof ClaimTaken;

/** A claim key from its parts (JSON, so no part can run into the next and no NUL reaches the database). */
export const claimKey = (...parts: Array<string | number>): string => JSON.stringify(parts);

/** Return false from a visitor to stop reading. */
export type Visit = (entry: Committed) => boolean | void;

/** The read side alone (what history pages and the ledgers use). */
export interface EnvelopeReader {
  tail(from: TailFrom, visit: Visit, opts?: TailOptions): Promise<void>;
  readNewestFirst(journal: JournalName, visit: Visit): Promise<void>;
  /** Every stored line of one journal in seq order, as stored (RFC 8785 bytes, no newline), not parsed. */
  readLines(journal: JournalName, visit: (line: Buffer) => void): Promise<void>;
}

export interface EnvelopeStore extends EnvelopeReader {
  /** Heartbeat history that replay does not visit, summarised when it was set aside; undefined when there is none. */
  readonly heartbeatSummary: HeartbeatSummary | undefined;
  /** The highest durable seq (after replay: the last replayed one); `tail` reads up to it. */
  readonly lastSeq: number;
  /**
   * With `afterSeq`, only the entries after it (the tail behind a state snapshot). The backend's recovery still runs:
   * JSONL torn tails are found at the ends of the files whatever the start, so they are set aside as in a full replay.
   */
  replay(visit: (entry: Committed) => void, opts?: ReplayOptions): Promise<ReplayReport>;
  /**
   * Before replay: the stored entry with this seq, or undefined when the log has none (it ends before it, or it
   * fell in a gap). What a state snapshot is checked against: its seq must be in this log, with the same line.
   */
  entryAt(seq: number): Promise<Committed | undefined>;
  append(drafts: readonly EnvelopeDraft[], opts?: AppendOptions): Promise<Committed[]>;
  /** Whether `append` enforces claims and id uniqueness itself (across every process sharing the store). */
  readonly enforcesClaims?: boolean;
  /** Takes claims with no entry (request nonces); rejects with ClaimTaken. Only stores with `enforcesClaims`. */
  claim?(claims: readonly Claim[]): Promise<void>;
  /**
   * Applies (through `onCommit`, in seq order) every entry other processes committed up to now; resolves when this
   * process has caught up with the log as it was when `sync` was called. Only stores shared by several replicas.
   */
  sync?(): Promise<void>;
  /** Resolves when everything appended so far is durable (or failed). */
  flush(): Promise<void>;
  /**
   * Called once the center is composed (after replay and the ledgers' load): a store that receives entries it did
   * not append (PostgreSQL: the other replicas' entries) starts handing them to `onCommit` from here on.
   */
  start?(): void;
  close(): Promise<void>;
}

/**
 * The envelope a draft becomes once a store gives it its id, seq and time, with its journal and canonical line: the
 * one place both stores make the bytes that are journaled, hashed into the ledgers and served.
 * Throws VALIDATION_ERROR (400) for a draft with no canonical form (a lone surrogate), so a store that builds its
 * entries before taking their seqs never leaves a gap.
 */
export function committedEntry(draft: EnvelopeDraft, id: string, seq: number, ts: string): Committed {
  const envelope: Envelope = {
    v: ENVELOPE_VERSION,
    id,
    seq,
    ts,
    kind: draft.kind,
    ...(draft.node_id !== undefined ? { node_id: draft.node_id } : {}),
    author: draft.author,
    ...(draft.on_behalf_of !== undefined ? { on_behalf_of: draft.on_behalf_of } : {}),
    body: draft.body,
  };
  let line: Buffer;
  try {
    line = Buffer.from(canonicalJson(envelope), 'utf8');
  } catch (err) {
    throw new VaultMeshError('VALIDATION_ERROR', `the envelope has no canonical JSON form: ${(err as Error).message}`, { status: 400, cause: err });
  }
  return { envelope, journal: journalForKind(draft.kind), line };
}
