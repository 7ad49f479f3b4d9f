import { describe, expect, it } from 'vitest';
import { createTailLag } from './tail-lag.js';

describe('tail lag', () => {
  it('is the log head minus the applied seq, reads the head at most once per cache period, and reports null when it cannot', async () => {
    let now = 0;
    let head = 10;
    let applied = 7;
    let reads = 0;
    let fail = false;
    const lag = createTailLag({
      readHead: async () => {
        reads++;
        if (fail) throw new Error('down');
        return head;
      },
      applied: () => applied,
      nowMs: () => now,
    });
    expect(await lag.get()).toBe(3);
    head = 12;
    applied = 12;
    expect(await lag.get()).toBe(0); // the cached head (10) is behind what is applied: never negative
    expect(reads).toBe(1);
    now = 1000;
    applied = 9;
    expect(await lag.get()).toBe(3);
    expect(reads).toBe(2);
    fail = true;
    now = 2000;
    expect(await lag.get()).toBeNull();
    expect(lag.last()).toBeNull();
  });

  it('does not hold a probe longer than waitMs while the head read hangs: the last value', async () => {
    let release!: (n: number) => void;
    let now = 0;
    let first = true;
    const lag = createTailLag({
      readHead: () => (first ? ((first = false), Promise.resolve(5)) : new Promise<number>((r) => (release = r))),
      applied: () => 4,
      nowMs: () => now,
      waitMs: 20,
    });
    expect(await lag.get()).toBe(1);
    now = 5000;
    const t0 = Date.now();
    expect(await lag.get()).toBe(1);
    expect(Date.now() - t0).toBeLessThan(1000);
    release(9);
    await new Promise((r) => setTimeout(r, 0));
    expect(await lag.get()).toBe(5);
  });
});
