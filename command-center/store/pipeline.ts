/**
 * The write path's front door: submit → store.append (durable) → commit fan-out, with de-duplication by envelope
 * id so an agent retrying a request (timeout, offline outbox) never stores a fact twice.
 */
import type { Envelope, EnvelopeDraft } from '../../protocol/envelope.js';
import { isClaimTaken, type AppendOptions, type EnvelopeStore } from './envelope-store.js';
import { perEntry, type Projection } from './commit-fanout.js';

/**
 * Remembers the most recent envelope ids (bounded). Eviction order is kept in a ring array, not by taking the first
 * key of the Map: after many deletions V8's Map iterator walks over tombstones, which made `keys().next()` the
 * bottleneck of replaying a million-line journal.
 */
export class RecentIds {
  static readonly DEFAULT_MAX = 200_000;
  /** id → its ring slot; the slot's seq is in `seqs`, so a snapshot takes the ring as it is, with no lookups. */
  private ids = new Map<string, number>();
  private order: Array<string | undefined>;
  private seqs: Float64Array;
  private next = 0;
  constructor(private readonly max = RecentIds.DEFAULT_MAX) {
    this.order = new Array(max);
    this.seqs = new Float64Array(max).fill(-1);
  }
  add(id: string, seq: number): void {
    const slot = this.ids.get(id);
    if (slot !== undefined) {
      this.seqs[slot] = seq;
      return;
    }
    const evicted = this.order[this.next];
    if (evicted !== undefined) this.ids.delete(evicted);
    this.order[this.next] = id;
    this.seqs[this.next] = seq;
    this.ids.set(id, this.next);
    this.next = (this.next + 1) % this.max;
  }
  get(id: string): number | undefined {
    const slot = this.ids.get(id);
    return slot === undefined ? undefined : this.seqs[slot];
  }
  /**
   * Its contents for a state snapshot: the eviction ring and each slot's seq, as they are (serialise them before
   * the next add). The map is not stored: its keys are exactly the ring's ids (an id enters the ring only when it is
   * not in the map, and leaves both at once), so it is rebuilt from the ring and each id string is stored once.
   */
  exportState(): RecentIdsState {
    return { max: this.max, next: this.next, order: this.order, seqs: this.seqs };
  }
  /** Takes the contents of a snapshot taken with the same bound; false (and unchanged) otherwise. */
  importState(s: RecentIdsState): boolean {
    if (s?.max !== this.max || !Array.isArray(s.order) || s.order.length !== this.max || !(s.seqs instanceof Float64Array) || s.seqs.length !== this.max) return false;
    if (!Number.isSafeInteger(s.next) || s.next < 0 || s.next >= this.max) return false;
    const ids = new Map<string, number>();
    for (let k = 0; k < this.max; k++) {
      const i = (s.next + k) % this.max;
      const id = s.order[i];
      if (id !== undefined) ids.set(id, i);
    }
    this.ids = ids;
    this.order = s.order;
    this.seqs = s.seqs;
    this.next = s.next;
    return true;
  }
}

export interface RecentIdsState {
  max: number;
  next: number;
  order: Array<string | undefined>;
  /** The seq of each ring slot's id (-1 for an empty slot). */
  seqs: Float64Array;
}

/**
 * Retries are recognised per author: the same id from another author is a different fact. Otherwise anyone able to
 * post events could claim, in advance, the id of a fact someone else will send (a receipt `rcpt-<command id>`) and
 * make the real one look like a duplicate.
 */
export function dedupKey(author: string, id: string): string {
  return `${author}\u0000${id}`;
}

export interface Pipeline {
  /** Rejects with ClaimTaken (kind 'claim') when one of `opts.claims` is taken; a taken id is a duplicate answer. */
  submit(draft: EnvelopeDraft, opts?: AppendOptions): Promise<{ envelope: Envelope; duplicate: boolean }>;
}

/**
 * Submission with de-duplication. The durable batch reaches state, bus and the rest through the store's commit
 * hook (commit-fanout.ts); `recentIds` is one of those projections, so a retry arriving after the commit is
 * recognised, and one arriving while the first is still in flight shares its promise. Across replicas (a store
 * that enforces claims) the store itself refuses an id already stored by another replica this one has not applied
 * yet: that answer is the same duplicate, with the stored seq.
 */
export function createPipeline(deps: { store: Pick<EnvelopeStore, 'append'>; recentIds: RecentIds }): Pipeline {
  const inflight = new Map<string, Promise<{ envelope: Envelope; duplicate: boolean }>>();
  return {
    submit(draft, opts) {
      const key = draft.id === undefined ? undefined : dedupKey(draft.author, draft.id);
      if (key !== undefined) {
        const seq = deps.recentIds.get(key);
        if (seq !== undefined) return Promise.resolve({ envelope: { ...draftToStub(draft), seq }, duplicate: true });
        const pending = inflight.get(key);
        if (pending) return pending.then((r) => ({ ...r, duplicate: true }));
      }
      const p = deps.store.append([draft], opts).then(
        ([c]) => ({ envelope: c!.envelope, duplicate: false }),
        (err: unknown) => {
          if (isClaimTaken(err) && err.kind === 'id') return { envelope: { ...draftToStub(draft), seq: err.seq }, duplicate: true };
          throw err;
        },
      );
      if (key !== undefined) {
        inflight.set(key, p);
        p.finally(() => inflight.delete(key)).catch(() => undefined);
      }
      return p;
    },
  };
}

/** The recent-ids projection: every journaled id, replayed or live, so retries across a restart are recognised. */
export function recentIdsProjection(recentIds: RecentIds): Projection {
  return perEntry(({ envelope }) => recentIds.add(dedupKey(envelope.author, envelope.id), envelope.seq));
}

function draftToStub(draft: EnvelopeDraft): Envelope {
  return { v: 1, id: draft.id!, seq: 0, ts: '', kind: draft.kind, author: draft.author, body: draft.body, ...(draft.node_id ? { node_id: draft.node_id } : {}) };
}
