import { describe, expect, it } from 'vitest';
import { createSweepGate, pacedSweep, SWEEP_MAX_IN_FLIGHT } from './paced-sweep.js';

/** Appends that settle only when the test says so, recording how many were pending at most. */
function appends() {
  const pending: Array<{ item: number; resolve: () => void; reject: (e: Error) => void }> = [];
  const started: number[] = [];
  let maxPending = 0;
  return {
    started,
    pending,
    get maxPending() {
      return maxPending;
    },
    start(item: number): Promise<void> {
      started.push(item);
      return new Promise<void>((resolve, reject) => {
        pending.push({ item, resolve, reject });
        maxPending = Math.max(maxPending, pending.length);
      });
    },
    /** Settles the oldest `n` pending appends (all by default). */
    settle(n = pending.length, fail?: (item: number) => boolean) {
      for (const p of pending.splice(0, n)) (fail?.(p.item) ? p.reject(new Error(`item ${p.item}`)) : p.resolve());
    },
  };
}

const turns = (n: number) => (async () => {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
})();
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('pacedSweep', () => {
  it('keeps at most maxInFlight appends pending, starts them in item order, and resolves once all have settled', async () => {
    const a = appends();
    let done = false;
    const sweep = pacedSweep(range(25), (i) => a.start(i), { maxInFlight: 4, onError: (e) => { throw e; } }).then(() => (done = true));
    // The first slice runs synchronously, as the unpaced sweep did: exactly maxInFlight started.
    expect(a.started).toEqual([0, 1, 2, 3]);
    // One settles at a time: the next one starts, never a fifth beside the four.
    for (let round = 0; round < 100 && a.pending.length; round++) {
      await turns(3);
      expect(a.pending.length).toBeLessThanOrEqual(4);
      a.settle(1);
    }
    await sweep;
    expect(done).toBe(true);
    expect(a.started).toEqual(range(25));
    expect(a.maxPending).toBe(4);
  });

  it('does not resolve while an append it started is still pending', async () => {
    const a = appends();
    let done = false;
    const sweep = pacedSweep(range(3), (i) => a.start(i), { onError: () => {} }).then(() => (done = true));
    await turns(5);
    a.settle(2);
    await turns(5);
    expect(done).toBe(false);
    a.settle();
    await sweep;
    expect(done).toBe(true);
  });

  it('items that need no append do not count against the limit, and the walk yields between slices', async () => {
    let yields = 0;
    const visited: number[] = [];
    await pacedSweep(range(10), (i) => void visited.push(i), {
      maxInFlight: 3,
      onError: () => {},
      yieldTurn: async () => void yields++,
    });
    expect(visited).toEqual(range(10));
    expect(yields).toBe(3); // after items 2, 5 and 8
  });

  it('a rejected or throwing item is reported and the sweep goes on with the next ones', async () => {
    const errors: string[] = [];
    const a = appends();
    const sweep = pacedSweep(
      range(8),
      (i) => {
        if (i === 2) throw new Error('item 2 threw');
        return a.start(i);
      },
      { maxInFlight: 2, onError: (e) => errors.push((e as Error).message) },
    );
    for (let i = 0; i < 20 && (a.pending.length || a.started.length < 7); i++) {
      await turns(2);
      a.settle(undefined, (item) => item === 5);
    }
    await sweep;
    expect(a.started).toEqual([0, 1, 3, 4, 5, 6, 7]);
    expect(errors).toEqual(['item 2 threw', 'item 5']);
  });

  it('stops starting items once cancelled; what was started still settles before it resolves', async () => {
    const a = appends();
    let stop = false;
    const sweep = pacedSweep(range(100), (i) => a.start(i), { maxInFlight: 5, cancelled: () => stop, onError: () => {} });
    expect(a.started).toEqual(range(5));
    stop = true;
    a.settle();
    await turns(3);
    a.settle();
    await sweep;
    expect(a.started).toEqual(range(5));
    expect(a.pending).toEqual([]);
  });

  it('refuses a limit that is not a positive integer', async () => {
    await expect(pacedSweep([1], () => {}, { maxInFlight: 0, onError: () => {} })).rejects.toThrow(RangeError);
  });

  it('the default limit is the named constant', async () => {
    const a = appends();
    const sweep = pacedSweep(range(SWEEP_MAX_IN_FLIGHT + 10), (i) => a.start(i), { onError: () => {} });
    expect(a.started.length).toBe(SWEEP_MAX_IN_FLIGHT);
    while (a.pending.length) {
      a.settle();
      await turns(2);
    }
    await sweep;
    expect(a.started.length).toBe(SWEEP_MAX_IN_FLIGHT + 10);
  });
});

describe('createSweepGate', () => {
  /** A sweep that runs until released, counting how many ran and how many at once. */
  function sweeps() {
    const releases: Array<() => void> = [];
    let started = 0;
    let running = 0;
    let maxRunning = 0;
    const gate = createSweepGate(async (cancelled) => {
      started++;
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise<void>((r) => releases.push(r));
      running--;
      if (cancelled()) cancelledRuns++;
    });
    let cancelledRuns = 0;
    return {
      gate,
      release: () => releases.shift()?.(),
      get started() {
        return started;
      },
      get maxRunning() {
        return maxRunning;
      },
      get cancelledRuns() {
        return cancelledRuns;
      },
    };
  }

  it('a run while one is running starts no second one beside it; ticks meanwhile queue one follow-up', async () => {
    const s = sweeps();
    const first = s.gate.run();
    expect(s.started).toBe(1); // started synchronously
    const second = s.gate.run();
    const third = s.gate.run();
    expect(second).toBe(third);
    expect(s.started).toBe(1);
    s.release();
    await first;
    await turns(2);
    expect(s.started).toBe(2);
    s.release();
    await second;
    expect(s.maxRunning).toBe(1);
    expect(s.gate.running).toBeUndefined();
    // Idle again: the next run starts at once.
    void s.gate.run();
    expect(s.started).toBe(3);
    s.release();
    await turns(2);
  });

  it('cancel marks the running sweep cancelled; the next run is a fresh sweep, not the cancelled one', async () => {
    const s = sweeps();
    const first = s.gate.run();
    s.gate.cancel();
    const next = s.gate.run();
    expect(next).not.toBe(first);
    s.release();
    await first;
    expect(s.cancelledRuns).toBe(1);
    await turns(2);
    s.release();
    await next;
    expect(s.started).toBe(2);
    expect(s.cancelledRuns).toBe(1);
  });
});
