import { describe, expect, it } from 'vitest';
import { HeartbeatHistory } from './heartbeat-history.js';

const sample = (t: number) => ({ t, load1: t / 10, mem_used: t * 2, mem_total: 4e9, disk_used: t * 3, disk_total: 1e11 });

describe('HistoryCapture', () => {
  it('packs every history as it was when the capture started, whatever is pushed meanwhile, across chunks', () => {
    const capacity = 8;
    // 2,500 histories: three chunks, the last one partial; fill levels vary (empty, partial, wrapped rings).
    const histories = Array.from({ length: 2500 }, (_, i) => {
      const h = new HeartbeatHistory(capacity);
      for (let k = 0; k < i % 13; k++) h.push(sample(i * 100 + k));
      return h;
    });
    const before = HeartbeatHistory.pack(histories, capacity);
    const expected = histories.map((h) => h.samples());
    const capture = HeartbeatHistory.capture(histories, capacity);
    // Pushes while the capture is in slices: to histories not yet copied (copy on write) and to ones already copied.
    let round = 0;
    while (!capture.step(97)) {
      for (const i of [2499 - round * 7, round * 5, 1000 + round]) histories[i]!.push(sample(-1 - round));
      round++;
    }
    const block = capture.finish();
    // Each chunk holds its histories' samples only (as they were at the start), not their capacity.
    const held = (from: number, to: number) => expected.slice(from, to).reduce((n, h) => n + h.length, 0) * HeartbeatHistory.FIELDS;
    expect(block.chunks.map((c) => c.length)).toEqual([held(0, 1000), held(1000, 2000), held(2000, 2500)]);
    const data = new Float64Array(block.chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of block.chunks) {
      data.set(c, at);
      at += c.length;
    }
    expect(data).toEqual(before.data);
    expect(block.count).toEqual(before.count);
    const packed = { data, count: block.count };
    expect(HeartbeatHistory.unpackAll(packed, capacity).map((h) => h.samples())).toEqual(expected);
    // The live histories did change, and are no longer held: a later push copies nothing.
    expect(histories[2499]!.samples()).not.toEqual(expected[2499]);
    expect(histories.every((h) => h.heldBy === undefined)).toBe(true);
  });

  it('a new capture first completes one that was given up', () => {
    const histories = Array.from({ length: 3 }, () => new HeartbeatHistory(4));
    histories.forEach((h, i) => h.push(sample(i)));
    const first = HeartbeatHistory.capture(histories, 4);
    const second = HeartbeatHistory.capture(histories, 4);
    histories[0]!.push(sample(99));
    expect(first.finish().chunks[0]![0]).toBe(0);
    expect(second.finish().chunks[0]![0]).toBe(0);
    expect(histories[0]!.samples().map((s) => s.t)).toEqual([0, 99]);
  });
});

describe('HeartbeatHistory', () => {
  const ts = (h: HeartbeatHistory) => h.samples().map((s) => s.t);

  it('grows its ring as samples come, keeps the newest `capacity` of them, oldest first', () => {
    const h = new HeartbeatHistory(40);
    for (let t = 1; t <= 100; t++) {
      h.push(sample(t));
      expect(h.length).toBe(Math.min(t, 40));
      expect(ts(h)).toEqual(Array.from({ length: Math.min(t, 40) }, (_, k) => Math.max(1, t - 39) + k));
    }
    // Room for what it holds, not the capacity, while it is filling.
    const young = new HeartbeatHistory(120);
    for (let t = 0; t < 20; t++) young.push(sample(t));
    expect((young as unknown as { data: Float64Array }).data.length).toBe(32 * HeartbeatHistory.FIELDS);
  });

  it('restored from a packed block (wrapped, partial and empty rings) it goes on exactly like the original', () => {
    const capacity = 10;
    const originals = [0, 3, 10, 23].map((n) => {
      const h = new HeartbeatHistory(capacity);
      for (let t = 0; t < n; t++) h.push(sample(1000 * n + t));
      return h;
    });
    const restored = HeartbeatHistory.unpackAll(HeartbeatHistory.pack(originals, capacity), capacity);
    expect(restored.map(ts)).toEqual(originals.map(ts));
    for (let t = 0; t < 25; t++) {
      originals.forEach((h, i) => {
        h.push(sample(-t - 1));
        restored[i]!.push(sample(-t - 1));
      });
      expect(restored.map(ts)).toEqual(originals.map(ts));
    }
  });

  it('refuses a block whose counts do not match its samples', () => {
    const h = new HeartbeatHistory(4);
    h.push(sample(1));
    const block = HeartbeatHistory.pack([h, h], 4);
    expect(() => HeartbeatHistory.unpackAll({ data: block.data.subarray(6), count: block.count }, 4)).toThrow(/malformed/);
    expect(() => HeartbeatHistory.unpackAll({ data: block.data, count: new Uint32Array([1]) }, 4)).toThrow(/malformed/);
    expect(() => HeartbeatHistory.unpackAll({ data: new Float64Array(30), count: new Uint32Array([5]) }, 4)).toThrow(/malformed/);
  });
});
