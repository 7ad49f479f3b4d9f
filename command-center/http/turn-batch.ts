/**
 * Runs callbacks once, together, after the current turn of the event loop: many `schedule(fn)` calls in one turn
 * arm a single deferral (e.g. `setImmediate`) that then runs each of them in the order they were scheduled.
 *
 * Why: a commit publishes to every SSE stream, and each stream then has one write to make. Run in the commit's own
 * microtasks, those writes (≈ 25 µs each on loopback, 25 ms for 1,000 clients) came before the POST's answer,
 * which waited for all of them; deferred one by one, each would cost its own timer. One deferral lets the turn
 * finish (the answers go out) and then does every stream's write back to back.
 */
export interface TurnBatch {
  /** Runs `fn` after this turn; a callback scheduled while a batch runs waits for the next one. */
  schedule(fn: () => void): void;
  /** Callbacks waiting for the next batch. */
  readonly pending: number;
}

export function createTurnBatch(defer: (run: () => void) => void = setImmediate): TurnBatch {
  // Two arrays in turn, each kept with its slots: the one being run and the one taking the next turn's callbacks.
  // A fresh array per turn (or `length = 0`, which V8 answers by dropping the backing store) grew to one slot per
  // stream, 1,000 at 1,000 SSE clients, through several reallocations at every commit.
  let queue: Array<(() => void) | undefined> = [];
  let queued = 0;
  let spare: Array<(() => void) | undefined> = [];
  let armed = false;
  const run = () => {
    armed = false;
    const batch = queue;
    const n = queued;
    queue = spare;
    queued = 0;
    for (let i = 0; i < n; i++) {
      const fn = batch[i]!;
      batch[i] = undefined; // a stream that ends is not kept alive by its last flush
      try {
        fn();
      } catch (err) {
        // One stream's failure must not cost the others their write; surface it as an uncaught error would.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    spare = batch;
  };
  return {
    schedule(fn) {
      queue[queued++] = fn;
      if (armed) return;
      armed = true;
      defer(run);
    },
    get pending() {
      return queued;
    },
  };
}
