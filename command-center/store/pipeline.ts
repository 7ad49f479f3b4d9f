/**
 * The write path's front door: submit → store.append (durable) → commit fan-out, with de-duplication by envelope
 * id so an agent retrying a request (timeout, offline outbox) never stores a fact twice.
 */
import type { Envelope, EnvelopeDraft } from '../../protocol/envelope.js';
import { isClaimTaken, type AppendOptions, type EnvelopeStore } from './envelope-store.js';
import { perEntry, type Projection } from './commit-fanout.js';
import type { RecentIds } from './recent-ids.js';

export { RecentIds, type RecentIdsState } from './recent-ids.js';

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
