// Bounded version of test/reliability/slow-consumers.test.ts for the default suite.
import { describe, expect, it } from 'vitest';
import { slowConsumersScenario } from './reliability/slow-consumers.js';

describe('slow and dead SSE consumers (50 clients, a quarter never read)', () => {
  it('live clients get every heartbeat and the center stays bounded', async () => {
    const r = await slowConsumersScenario({ clients: 50, deadShare: 0.25, heartbeats: 200 });
    expect(r.liveMissed).toBe(0);
    expect(r.rssPeakMb - r.rssBeforeMb).toBeLessThan(150);
  }, 60_000);
});
