/**
 * Fan-out of committed envelopes to live subscribers (SSE clients, console streams). Keeps a ring of recent
 * envelopes so a reconnecting client can resume from `Last-Event-ID`; each subscriber has a bounded queue and is
 * dropped, not buffered without limit, when it stops reading.
 */
import type { Envelope } from '../../protocol/envelope.js';

export interface Subscription {
  /** Next envelope; `undefined` once closed; 'idle' when `idleMs` passed with nothing to send. */
  next(idleMs?: number): Promise<Envelope | 'idle' | undefined>;
  /** Up to `max` envelopes already queued, without waiting (to send a burst in one write). */
  takeQueued(max: number): Envelope[];
  /**
   * The oldest queued envelope, without waiting; undefined if none. The usual flush (one envelope per commit) takes
   * it this way: the queue array stays the subscription's, so a delivery allocates no array (≈ 170 bytes per client
   * per envelope with `takeQueued`, and at 1,000 clients that garbage made the young generation fill faster).
   */
  takeOne(): Envelope | undefined;
  /** How many envelopes are queued (what `takeQueued` would find). */
  readonly queued: number;
  /**
   * Push instead of pull: `fn` runs (synchronously, inside `publish`) whenever an envelope is queued and when the
   * subscription closes; the owner then drains it with `takeQueued`. For a writer that should not pay a promise per
   * envelope (one SSE stream per client, a thousand clients). Not to be mixed with a pending `next`.
   */
  listen(fn: () => void): void;
  close(): void;
  readonly closed: boolean;
  /** Why the bus closed it ('overflow' for a client that stopped reading). */
  readonly reason: 'overflow' | 'closed' | 'shutdown' | undefined;
}

export interface EventBus {
  publish(env: Envelope): void;
  /** Adds to the resume ring without notifying anyone (replay at start-up). */
  retain(env: Envelope): void;
  /** Subscribes; when `afterSeq` is given, first delivers retained envelopes with a greater seq. */
  subscribe(opts?: { afterSeq?: number; maxQueue?: number; filter?: (env: Envelope) => boolean }): { sub: Subscription; resumed: boolean };
  recent(afterSeq: number, limit: number): Envelope[];
  /** The resume ring, oldest first, and the seq of the newest envelope it dropped: what a state snapshot keeps. */
  exportRing(): { envelopes: Envelope[]; droppedUpTo: number };
  /** Refills the resume ring from a snapshot (before any subscriber; the tail of replay follows through `retain`). */
  importRing(r: { envelopes: Envelope[]; droppedUpTo: number }): void;
  readonly subscribers: number;
  readonly oldestRetainedSeq: number | undefined;
  close(): void;
}

export function createEventBus(opts: { retain?: number; defaultMaxQueue?: number } = {}): EventBus {
  const retain = opts.retain ?? 2048;
  // Circular buffer of the last `retain` envelopes; `droppedUpTo` is the seq of the newest one evicted, so a
  // client whose Last-Event-ID is at least that has missed nothing.
  const ring: Array<Envelope | undefined> = new Array(retain);
  let head = 0;
  let size = 0;
  let droppedUpTo = 0;
  const pushRing = (env: Envelope) => {
    const slot = (head + size) % retain;
    if (size === retain) {
      droppedUpTo = ring[head]!.seq;
      head = (head + 1) % retain;
    } else size++;
    ring[slot] = env;
  };
  function* inRing(): Generator<Envelope> {
    for (let i = 0; i < size; i++) yield ring[(head + i) % retain]!;
  }
  const subs = new Set<SubscriptionImpl>();

  class SubscriptionImpl implements Subscription {
    queue: Envelope[] = [];
    waiter: ((v: Envelope | 'idle' | undefined) => void) | undefined;
    listener: (() => void) | undefined;
    timer: NodeJS.Timeout | undefined;
    closed = false;
    reason: Subscription['reason'];
    constructor(readonly maxQueue: number, readonly filter?: (env: Envelope) => boolean) {}

    offer(env: Envelope): void {
      if (this.closed || (this.filter && !this.filter(env))) return;
      if (this.waiter) return this.wake(env);
      if (this.queue.length >= this.maxQueue) return this.end('overflow');
      this.queue.push(env);
      this.listener?.();
    }
    listen(fn: () => void): void {
      this.listener = fn;
      if (this.queue.length || this.closed) fn();
    }
    wake(v: Envelope | 'idle' | undefined): void {
      const w = this.waiter;
      this.waiter = undefined;
      clearTimeout(this.timer);
      w?.(v);
    }
    takeQueued(max: number): Envelope[] {
      if (max <= 0 || !this.queue.length) return [];
      // The usual case (a commit's one or few envelopes, once per client per commit): hand the queue over whole.
      if (this.queue.length <= max) {
        const all = this.queue;
        this.queue = [];
        return all;
      }
      return this.queue.splice(0, max);
    }
    takeOne(): Envelope | undefined {
      return this.queue.shift();
    }
    get queued(): number {
      return this.queue.length;
    }
    next(idleMs?: number): Promise<Envelope | 'idle' | undefined> {
      if (this.queue.length) return Promise.resolve(this.queue.shift());
      if (this.closed) return Promise.resolve(undefined);
      return new Promise((resolve) => {
        this.waiter = resolve;
        if (idleMs !== undefined) this.timer = setTimeout(() => this.wake('idle'), idleMs);
      });
    }
    end(reason: NonNullable<Subscription['reason']>): void {
      if (this.closed) return;
      this.closed = true;
      this.reason = reason;
      this.queue = [];
      subs.delete(this);
      this.wake(undefined);
      this.listener?.();
    }
    close(): void {
      this.end('closed');
    }
  }

  return {
    publish(env) {
      pushRing(env);
      for (const s of subs) s.offer(env);
    },
    retain: pushRing,
    exportRing() {
      return { envelopes: [...inRing()], droppedUpTo };
    },
    importRing(r) {
      head = 0;
      size = 0;
      ring.fill(undefined);
      for (const env of r.envelopes) pushRing(env);
      // A snapshot taken with a larger ring: what did not fit counts as dropped, as in a replay with this one.
      droppedUpTo = Math.max(r.droppedUpTo, droppedUpTo);
    },
    subscribe({ afterSeq, maxQueue, filter } = {}) {
      const sub = new SubscriptionImpl(maxQueue ?? opts.defaultMaxQueue ?? 1024, filter);
      let resumed = true;
      if (afterSeq !== undefined) {
        resumed = afterSeq >= droppedUpTo;
        if (resumed) for (const env of inRing()) if (env.seq > afterSeq && (!filter || filter(env))) sub.queue.push(env);
      }
      subs.add(sub);
      return { sub, resumed };
    },
    recent(afterSeq, limit) {
      const out: Envelope[] = [];
      for (const env of inRing()) if (env.seq > afterSeq && out.length < limit) out.push(env);
      return out;
    },
    get subscribers() {
      return subs.size;
    },
    get oldestRetainedSeq() {
      return size ? ring[head]!.seq : undefined;
    },
    close() {
      for (const s of [...subs]) s.end('shutdown');
    },
  };
}
