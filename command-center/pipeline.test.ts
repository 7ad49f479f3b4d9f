import { describe, expect, it } from 'vitest';
import { RecentIds } from './pipeline.js';

describe('RecentIds', () => {
  it('keeps the newest ids up to its bound and forgets the oldest', () => {
    const r = new RecentIds(3);
    for (const [i, id] of ['a', 'b', 'c', 'd'].entries()) r.add(id, i + 1);
    expect(r.get('a')).toBeUndefined();
    expect([r.get('b'), r.get('c'), r.get('d')]).toEqual([2, 3, 4]);
    r.add('c', 9); // re-adding does not take a second slot
    r.add('e', 5);
    expect(r.get('b')).toBeUndefined();
    expect([r.get('c'), r.get('d'), r.get('e')]).toEqual([9, 4, 5]);
  });
});
