import { describe, expect, it } from 'vitest';
import { describeFailures, runBadInput } from './bad-input-run.js';

describe('bad input: the whole generated corpus against a real center', () => {
  it('answers every case with a 4xx JSON error, stays up, keeps journals valid and state unchanged', async () => {
    const r = await runBadInput();
    console.log(`bad input: ${r.cases} cases, ${r.rejected} rejected cleanly, ${r.fiveXx.length} 5xx; statuses ${JSON.stringify(r.statusCounts)}`);
    if (r.failures.length) console.log(describeFailures(r, 60));
    expect(r.cases).toBeGreaterThanOrEqual(2000);
    expect(r.fiveXx.map((f) => f.c.name)).toEqual([]);
    expect(r.failures.map((f) => `${f.c.name}: ${f.problem}`)).toEqual([]);
    expect(r.alive).toBe(true);
    expect(r.journalProblems).toEqual([]);
    expect(r.after).toEqual(r.before);
    expect(r.journalsChanged).toBe(false);
  }, 600_000);
});
