import { describe, expect, it } from 'vitest';
import { slowConsumersScenario } from './slow-consumers.js';

describe('slow and dead SSE consumers: 200 clients, a quarter never read', () => {
  it('keeps the center RSS bounded and live clients within the 100 ms target', async () => {
    const r = await slowConsumersScenario({ clients: 200, deadShare: 0.25, heartbeats: 1000 });
    console.log(`slow consumers: ${JSON.stringify(r)}`);
    expect(r.liveMissed).toBe(0);
    expect(r.liveP99Ms).toBeLessThanOrEqual(100);
    expect(r.rssPeakMb - r.rssBeforeMb).toBeLessThan(150);
    // ≈ 13 MB per dead client was sent; the center must not have buffered it (RSS above), whether by dropping the
    // client (deadDropped) or by not pulling for it.
  }, 300_000);
});
