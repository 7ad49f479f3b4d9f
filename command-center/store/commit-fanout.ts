/**
 * The commit fan-out: the one place every consumer of journal entries is registered, with the one order they run in.
 *
 * Two kinds of consumer:
 * - A *projection* is in-memory state derived from the journal (fleet state, recent ids, the SSE ring, the event
 *   log, the ledgers). It is rebuilt from the journal at start-up (`replay`, entry by entry in seq order) and then
 *   fed every durable batch (`commit`). It never writes or submits, so replaying twice gives the same state.
 * - A *reactor* acts on new facts (attention, webhooks) and may submit further envelopes. It has only `onCommit`:
 *   replay never reaches it, so restarting a center does not re-fire webhooks or re-raise attention.
 *
 * Composition adds every consumer, then seals; adding one after `seal()` throws, and so does a live commit before
 * it, so no consumer can miss the first live batch. On a commit the projections run first, in registration order,
 * then the reactors. The journal has made the batch durable before `commit` is called, so nothing here may
 * un-acknowledge it: a throwing consumer is logged and the others still run.
 */
import type { Committed } from './envelope-store.js';

export interface Projection {
  /**
   * One journal entry at start-up, in seq order. Its `line` may live in a read buffer the next entries reuse
   * (ReplayOptions.reuseBuffers): a projection that keeps it copies it.
   */
  replay(entry: Committed): void;
  /** Once, after the last replayed entry and before any live commit (e.g. to apply a summary of pruned history). */
  replayed?(): void;
  /** One durable batch, in seq order. */
  commit(batch: readonly Committed[]): void;
}

export interface Reactor {
  /** One durable batch, in seq order; live commits only. May submit (the new envelopes land in a later batch). */
  onCommit(batch: readonly Committed[]): void;
}

export interface CommitFanout {
  addProjection(name: string, projection: Projection): void;
  addReactor(name: string, reactor: Reactor): void;
  /** Feeds one replayed entry to the projections. Throws once replay has ended: history is rebuilt once. */
  replay(entry: Committed): void;
  /** Ends replay (runs each projection's `replayed`). */
  endReplay(): void;
  /** Ends composition: from here consumers are fixed and live commits are accepted. */
  seal(): void;
  /** The journal's commit hook: projections, then reactors. Never throws for a failing consumer. */
  commit(batch: readonly Committed[]): void;
}

export interface CommitFanoutOptions {
  log: { error(msg: string): void };
}

/** A projection that treats replayed and committed entries alike. */
export function perEntry(apply: (entry: Committed) => void): Projection {
  return {
    replay: apply,
    commit: (batch) => {
      for (const entry of batch) apply(entry);
    },
  };
}

export function createCommitFanout(opts: CommitFanoutOptions): CommitFanout {
  const projections: Array<{ name: string; projection: Projection }> = [];
  const reactors: Array<{ name: string; reactor: Reactor }> = [];
  let sealed = false;
  let replaying = true;

  const assertComposing = (name: string) => {
    if (sealed) throw new Error(`commit fan-out is sealed: cannot add ${name}`);
    if (projections.some((p) => p.name === name) || reactors.some((r) => r.name === name)) throw new Error(`commit fan-out: ${name} added twice`);
  };
  const endReplay = () => {
    if (!replaying) return;
    replaying = false;
    for (const { projection } of projections) projection.replayed?.();
  };

  return {
    addProjection(name, projection) {
      assertComposing(name);
      if (!replaying) throw new Error(`commit fan-out: projection ${name} added after replay, it would miss the history`);
      projections.push({ name, projection });
    },
    addReactor(name, reactor) {
      assertComposing(name);
      reactors.push({ name, reactor });
    },
    replay(entry) {
      if (!replaying) throw new Error('commit fan-out: replay after replay ended');
      // A failure here stops start-up (the caller's replay rejects): better no center than one with wrong state.
      for (const { projection } of projections) projection.replay(entry);
    },
    endReplay,
    seal() {
      endReplay();
      sealed = true;
    },
    commit(batch) {
      if (!sealed) throw new Error('commit fan-out: live commit before seal()');
      for (const { name, projection } of projections) {
        try {
          projection.commit(batch);
        } catch (err) {
          opts.log.error(`projection ${name} failed on seq ${batch[0]?.envelope.seq}..${batch.at(-1)?.envelope.seq}: ${(err as Error).message ?? err}`);
        }
      }
      for (const { name, reactor } of reactors) {
        try {
          reactor.onCommit(batch);
        } catch (err) {
          opts.log.error(`reactor ${name} failed on seq ${batch[0]?.envelope.seq}..${batch.at(-1)?.envelope.seq}: ${(err as Error).message ?? err}`);
        }
      }
    },
  };
}
