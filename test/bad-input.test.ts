// Bounded version of test/reliability/bad-input.test.ts for the default suite: every 6th case of the corpus.
import { describe, expect, it } from 'vitest';
import { describeFailures, runBadInput } from './reliability/bad-input-run.js';

describe('bad input (sample of the reliability corpus)', () => {
  it('rejects a few hundred malformed, forged and hostile requests with 4xx JSON errors and no state change', async () => {
    const r = await runBadInput({ every: 6 });
    if (r.failures.length) console.log(describeFailures(r));
    expect(r.cases).toBeGreaterThanOrEqual(300);
    expect(r.failures.map((f) => `${f.c.name}: ${f.problem}`)).toEqual([]);
    expect(r.alive).toBe(true);
    expect(r.journalProblems).toEqual([]);
    expect(r.after).toEqual(r.before);
    expect(r.journalsChanged).toBe(false);
  }, 120_000);
});
