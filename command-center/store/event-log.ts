/**
 * Reading the envelope history for `GET /api/events`: the most recent `window` envelopes of each journal stay in
 * memory (fed by replay and by every commit); a page that reaches further back is read from the store (`tail` from a
 * seq or time, or `readNewestFirst`), streaming in constant memory and stopping as soon as the page is full.
 */
import { JOURNAL_FILES, journalForKind, type Envelope, type JournalName } from '../../protocol/envelope.js';
import type { EnvelopeStore } from './envelope-store.js';

export type Since = { seq: number } | { tsMs: number };

export interface EventQuery {
  /** Items strictly after this seq, or at/after this time. Default: from the beginning. */
  since?: Since;
  kinds?: readonly string[];
  nodeId?: string;
  limit: number;
  /** 'desc': newest first, for "the latest n" and paging back in time with `before`. Default 'asc'. */
  order?: 'asc' | 'desc';
  /** With order 'desc': items strictly before this seq (the `next` cursor of the previous page). */
  before?: number;
  /**
   * With order 'desc': read at most this many envelopes from each journal in the store. A sparse query (one node's
   * events) on a long history would otherwise read whole journals; with a bound the page holds what was found down
   * to where every journal was read, and `next` continues from there, so paging still misses nothing.
   */
  scanLimit?: number;
}

export interface EventPage {
  items: Envelope[];
  /** Cursor for the next page (a seq, as a string: `since` ascending, `before` descending) when this page is full, else null. */
  next: string | null;
  /** Where the page came from (for metrics and tests). */
  source: 'memory' | 'journal';
}

export interface EventLog {
  /** Remembers a committed (or replayed) envelope in its journal's window. */
  add(env: Envelope): void;
  query(q: EventQuery): Promise<EventPage>;
  stats(): Record<JournalName, { retained: number; evictedUpToSeq: number }>;
  /** Each journal's window, oldest first, with what it evicted: what a state snapshot keeps. */
  exportWindows(): Record<string, WindowContents>;
  /** Refills the windows from a snapshot (before the tail of replay adds the rest). */
  importWindows(w: Record<string, WindowContents>): void;
}

export interface WindowContents {
  envelopes: Envelope[];
  evictedSeq: number;
  evictedTsMs: number;
}

interface Window {
  ring: Array<Envelope | undefined>;
  head: number;
  size: number;
  evictedSeq: number;
  evictedTsMs: number;
}

export function createEventLog(opts: { store: Pick<EnvelopeStore, 'tail' | 'readNewestFirst'>; window?: number; lastSeq: () => number }): EventLog {
  const cap = Math.max(1, opts.window ?? 500);
  const windows = new Map<JournalName, Window>();
  for (const name of Object.keys(JOURNAL_FILES) as JournalName[]) {
    windows.set(name, { ring: new Array(cap), head: 0, size: 0, evictedSeq: 0, evictedTsMs: -Infinity });
  }

  const covers = (w: Window, since: Since | undefined): boolean => {
    if (w.evictedSeq === 0) return true;
    if (!since) return false;
    return 'seq' in since ? w.evictedSeq <= since.seq : w.evictedTsMs < since.tsMs;
  };

  const matcher = (q: EventQuery, upTo: number) => {
    const kinds = q.kinds?.length ? new Set(q.kinds) : undefined;
    const since = q.since;
    return (e: Envelope): boolean => {
      if (e.seq > upTo || (q.before !== undefined && e.seq >= q.before)) return false;
      if (since && ('seq' in since ? e.seq <= since.seq : Date.parse(e.ts) < since.tsMs)) return false;
      return (!kinds || kinds.has(e.kind)) && (q.nodeId === undefined || e.node_id === q.nodeId);
    };
  };
  /** True when nothing older than `e` can match: it is at or before the `since` bound. */
  const pastSince = (q: EventQuery, e: Envelope): boolean => !!q.since && ('seq' in q.since ? e.seq <= q.since.seq : Date.parse(e.ts) < q.since.tsMs);

  const upToNow = () => opts.lastSeq();
  const queryNewestFirst = async (q: EventQuery): Promise<EventPage> => {
    const names: JournalName[] = q.kinds?.length ? [...new Set(q.kinds.map(journalForKind))] : (Object.keys(JOURNAL_FILES) as JournalName[]);
    const matches = matcher(q, opts.lastSeq());
    const newestFirst = (items: Envelope[], source: EventPage['source']): EventPage => {
      items.sort((a, b) => b.seq - a.seq);
      const page = items.slice(0, q.limit);
      return { items: page, next: page.length === q.limit ? String(page[page.length - 1]!.seq) : null, source };
    };
    const found: Envelope[] = [];
    for (const n of names) {
      const w = windows.get(n)!;
      for (let i = 0; i < w.size; i++) {
        const e = w.ring[(w.head + i) % cap]!;
        if (matches(e)) found.push(e);
      }
    }
    const fromMemory = newestFirst(found, 'memory');
    // Exact: an envelope a window evicted is older than everything it holds, so the memory page is the true page when
    // for every journal either the window holds all it could contribute (`covers`), or the page is full and its
    // oldest item is newer than the journal's evicted tail.
    const cutoff = fromMemory.items.length === q.limit ? fromMemory.items[fromMemory.items.length - 1]!.seq : -1;
    if (names.every((n) => covers(windows.get(n)!, q.since) || cutoff > windows.get(n)!.evictedSeq)) return fromMemory;
    let items: Envelope[] = [];
    // Seq down to which every journal cut short by scanLimit was read: everything at or above it is complete.
    let readDownTo = -1;
    for (const n of names) {
      let taken = 0;
      let scanned = 0;
      let last: number | undefined;
      let cut = false;
      await opts.store.readNewestFirst(n, ({ envelope: e }) => {
        if (pastSince(q, e)) return false;
        if (e.seq > upToNow() || (q.before !== undefined && e.seq >= q.before)) return true; // not counted: newer than the page
        last = e.seq;
        if (matches(e)) {
          items.push(e);
          if (++taken >= q.limit) return false;
        }
        if (q.scanLimit !== undefined && ++scanned >= q.scanLimit) {
          cut = true;
          return false;
        }
        return true;
      });
      if (cut && last !== undefined) readDownTo = Math.max(readDownTo, last);
    }
    if (readDownTo < 0) return newestFirst(items, 'journal');
    items = items.filter((e) => e.seq >= readDownTo);
    const page = newestFirst(items, 'journal');
    // Not full: the page ends where the reading stopped, and the next one starts there.
    return page.next === null ? { ...page, next: String(readDownTo) } : page;
  };

  return {
    add(env) {
      const w = windows.get(journalForKind(env.kind))!;
      const slot = (w.head + w.size) % cap;
      if (w.size === cap) {
        const old = w.ring[w.head]!;
        w.evictedSeq = old.seq;
        w.evictedTsMs = Date.parse(old.ts);
        w.head = (w.head + 1) % cap;
      } else w.size++;
      w.ring[slot] = env;
    },

    async query(q) {
      if (q.order === 'desc') return queryNewestFirst(q);
      const names: JournalName[] = q.kinds?.length ? [...new Set(q.kinds.map(journalForKind))] : (Object.keys(JOURNAL_FILES) as JournalName[]);
      const kinds = q.kinds?.length ? new Set(q.kinds) : undefined;
      const since = q.since;
      const upTo = opts.lastSeq(); // everything up to here is durable and complete in the files
      const matches = (e: Envelope): boolean => {
        if (since) {
          if ('seq' in since ? e.seq <= since.seq : Date.parse(e.ts) < since.tsMs) return false;
        }
        return (!kinds || kinds.has(e.kind)) && (q.nodeId === undefined || e.node_id === q.nodeId);
      };
      const page = (items: Envelope[], source: EventPage['source']): EventPage => ({
        items,
        next: items.length === q.limit ? String(items[items.length - 1]!.seq) : null,
        source,
      });

      if (names.every((n) => covers(windows.get(n)!, since))) {
        const found: Envelope[] = [];
        for (const n of names) {
          const w = windows.get(n)!;
          for (let i = 0; i < w.size; i++) {
            const e = w.ring[(w.head + i) % cap]!;
            if (e.seq <= upTo && matches(e)) found.push(e);
          }
        }
        found.sort((a, b) => a.seq - b.seq);
        return page(found.slice(0, q.limit), 'memory');
      }

      const items: Envelope[] = [];
      await opts.store.tail(
        !since ? { afterSeq: 0 } : 'seq' in since ? { afterSeq: since.seq } : { tsMs: since.tsMs },
        ({ envelope }) => {
          if (envelope.seq > upTo) return false;
          if (matches(envelope)) items.push(envelope);
          return items.length < q.limit;
        },
        { journals: names, onCorrupt: 'skip' }, // replay already refused or quarantined bad lines; a reader never stops on one
      );
      return page(items, 'journal');
    },

    exportWindows() {
      const out: Record<string, WindowContents> = {};
      for (const [n, w] of windows) {
        const envelopes: Envelope[] = [];
        for (let i = 0; i < w.size; i++) envelopes.push(w.ring[(w.head + i) % cap]!);
        out[n] = { envelopes, evictedSeq: w.evictedSeq, evictedTsMs: w.evictedTsMs };
      }
      return out;
    },

    importWindows(saved) {
      for (const [n, w] of windows) {
        const s = saved[n];
        w.ring.fill(undefined);
        w.head = 0;
        w.size = 0;
        w.evictedSeq = 0;
        w.evictedTsMs = -Infinity;
        if (!s) continue;
        for (const env of s.envelopes) this.add(env);
        // A window smaller than the snapshot's evicted some while refilling; never forget older evictions.
        if (s.evictedSeq > w.evictedSeq) {
          w.evictedSeq = s.evictedSeq;
          w.evictedTsMs = s.evictedTsMs;
        }
      }
    },

    stats() {
      const out = {} as Record<JournalName, { retained: number; evictedUpToSeq: number }>;
      for (const [n, w] of windows) out[n] = { retained: w.size, evictedUpToSeq: w.evictedSeq };
      return out;
    },
  };
}
