/**
 * Paced sweeps for the leader's monitors (attention, outages). A sweep visits every node and may journal one
 * envelope per node; after a downtime every node is stale at once, and starting all those appends in one event-loop
 * turn kept every draft, envelope, serialized line and pending promise alive together (≈ 20,000 at 10,000 nodes: a
 * visible part of the center's RSS after start-up). Here a sweep starts at most `maxInFlight` appends, waits for one
 * to finish before starting more, and yields to the event loop between slices of items, so requests are served
 * meanwhile. The items are still visited, and their appends started, in the caller's order.
 */
import { nextTurn } from './next-turn.js';

/** Appends one sweep keeps in flight: a journal batch's worth, few enough that their garbage stays small. */
export const SWEEP_MAX_IN_FLIGHT = 256;

export interface PacedSweepOptions {
  /** At most this many appends pending at once; also the number of items visited between yields. */
  maxInFlight?: number;
  /** Checked before each item: a monitor that stopped starts nothing more (appends already started finish). */
  cancelled?: () => boolean;
  /** A failed item (thrown or rejected) is reported here and the sweep goes on with the next. */
  onError: (err: unknown) => void;
  /** Gives the event loop a turn between slices (default setImmediate). */
  yieldTurn?: () => Promise<void>;
}

/**
 * Calls `step` for each item in order; `step` returns the promise of the append it started, or nothing when the
 * item needs none. Resolves once every started append has settled. The first slice runs synchronously, as the
 * unpaced sweeps did.
 */
export async function pacedSweep<T>(items: Iterable<T>, step: (item: T) => Promise<unknown> | void, opts: PacedSweepOptions): Promise<void> {
  const max = opts.maxInFlight ?? SWEEP_MAX_IN_FLIGHT;
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`pacedSweep: maxInFlight must be a positive integer, got ${max}`);
  const yieldTurn = opts.yieldTurn ?? nextTurn;
  let active = 0;
  let wake: (() => void) | undefined;
  const settled = () => {
    active--;
    const w = wake;
    wake = undefined;
    w?.();
  };
  const slot = () => new Promise<void>((resolve) => (wake = resolve));
  let sinceYield = 0;
  for (const item of items) {
    if (opts.cancelled?.()) break;
    let p: Promise<unknown> | void;
    try {
      p = step(item);
    } catch (err) {
      opts.onError(err);
      p = undefined;
    }
    if (p) {
      active++;
      p.then(settled, (err: unknown) => {
        opts.onError(err);
        settled();
      });
    }
    if (active >= max) {
      await slot();
      sinceYield = 0;
    } else if (++sinceYield >= max) {
      sinceYield = 0;
      await yieldTurn();
    }
  }
  while (active > 0) await slot();
}

/**
 * One sweep at a time: `run()` while a sweep is running does not start a second one beside it; it queues one
 * follow-up (however many ticks fire meanwhile), started when the running sweep ends, so what changed since that
 * sweep began is still looked at. `cancel()` (the monitor stopped) makes the running sweep start no more items.
 */
export interface SweepGate {
  /** Resolves when the sweep that covers this call has ended. */
  run(): Promise<void>;
  cancel(): void;
  /** The sweep in progress or queued, if any (for `idle()`). */
  readonly running: Promise<void> | undefined;
}

export function createSweepGate(sweep: (cancelled: () => boolean) => Promise<void>): SweepGate {
  let running: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  let generation = 0;
  const start = (): Promise<void> => {
    const gen = generation;
    const p: Promise<void> = sweep(() => gen !== generation).finally(() => {
      if (running === p) running = undefined;
    });
    running = p;
    return p;
  };
  return {
    run() {
      // With nothing running the sweep starts now (its first slice synchronously, as the unpaced sweeps did).
      if (!running) return start();
      const after = () => {
        queued = undefined;
        return running ?? start();
      };
      queued ??= running.then(after, after);
      return queued;
    },
    cancel() {
      generation++;
    },
    get running() {
      return queued ?? running;
    },
  };
}
