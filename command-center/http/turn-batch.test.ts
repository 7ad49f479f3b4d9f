import { describe, expect, it } from 'vitest';
import { createTurnBatch } from './turn-batch.js';

describe('turn batch', () => {
  it('runs everything scheduled in one turn after it, in order, with one deferral', async () => {
    let deferrals = 0;
    const batch = createTurnBatch((run) => {
      deferrals++;
      setImmediate(run);
    });
    const seen: string[] = [];
    batch.schedule(() => seen.push('a'));
    batch.schedule(() => seen.push('b'));
    queueMicrotask(() => seen.push('microtask'));
    batch.schedule(() => seen.push('c'));
    expect(batch.pending).toBe(3);
    expect(seen).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['microtask', 'a', 'b', 'c']);
    expect(deferrals).toBe(1);
    expect(batch.pending).toBe(0);
  });

  it('turn after turn, with more or fewer callbacks each time, runs each callback once, in order', () => {
    // The batch keeps its two arrays from turn to turn: what a longer turn left in them must not run again.
    const runs: Array<() => void> = [];
    const batch = createTurnBatch((run) => runs.push(run));
    for (const count of [5, 2, 0, 7, 1, 3]) {
      const seen: number[] = [];
      for (let i = 0; i < count; i++) batch.schedule(() => seen.push(i));
      expect(batch.pending).toBe(count);
      if (count) runs.shift()!();
      expect(runs).toHaveLength(0);
      expect(seen).toEqual(Array.from({ length: count }, (_, i) => i));
      expect(batch.pending).toBe(0);
    }
  });

  it('answers queued before the batch goes out first: the turn ends before any callback runs', async () => {
    const batch = createTurnBatch();
    const order: string[] = [];
    await Promise.resolve().then(() => {
      batch.schedule(() => order.push('flush'));
      // what the rest of the commit's microtasks do (the POST's answer)
      return Promise.resolve().then(() => order.push('answer'));
    });
    expect(order).toEqual(['answer']);
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['answer', 'flush']);
  });

  it('a callback scheduled while a batch runs waits for the next batch', async () => {
    const runs: Array<() => void> = [];
    const batch = createTurnBatch((run) => runs.push(run));
    const seen: number[] = [];
    batch.schedule(() => {
      seen.push(1);
      batch.schedule(() => seen.push(2));
    });
    runs.shift()!();
    expect(seen).toEqual([1]);
    expect(runs).toHaveLength(1);
    runs.shift()!();
    expect(seen).toEqual([1, 2]);
  });

  it('one failing callback does not keep the others from running; the error still surfaces', async () => {
    const runs: Array<() => void> = [];
    const batch = createTurnBatch((run) => runs.push(run));
    const seen: string[] = [];
    const errors: unknown[] = [];
    const onError = (err: unknown) => errors.push(err);
    const listeners = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    process.on('uncaughtException', onError);
    try {
      batch.schedule(() => {
        throw new Error('boom');
      });
      batch.schedule(() => seen.push('after'));
      runs.shift()!();
      expect(seen).toEqual(['after']);
      await new Promise((r) => setTimeout(r, 10));
      expect(errors).toHaveLength(1);
      expect((errors[0] as Error).message).toBe('boom');
    } finally {
      process.off('uncaughtException', onError);
      for (const l of listeners) process.on('uncaughtException', l);
    }
  });
});
