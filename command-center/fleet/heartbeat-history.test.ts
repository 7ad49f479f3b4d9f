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
    expect(block.chunks.map((c) => c.length)).toEqual([1000, 1000, 500].map((n) => n * capacity * HeartbeatHistory.FIELDS));
    const data = new Float64Array(block.chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of block.chunks) {
      data.set(c, at);
      at += c.length;
    }
    expect(data).toEqual(before.data);
    expect(block.start).toEqual(before.start);
    expect(block.count).toEqual(before.count);
    const packed = { data, start: block.start, count: block.count };
    expect(histories.map((_, i) => HeartbeatHistory.unpack(packed, i, capacity).samples())).toEqual(expected);
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
    expect(first.finish().chunks[0]!.subarray(0, 6)[0]).toBe(0);
    expect(second.finish().chunks[0]!.subarray(0, 6)[0]).toBe(0);
    expect(histories[0]!.samples().map((s) => s.t)).toEqual([0, 99]);
  });
});
