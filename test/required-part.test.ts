/**
 * A suite that needs a missing outside part fails the run under CI and is skipped loudly elsewhere: a real vitest
 * process on a one-file suite that needs a part that does not exist.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { onCi } from './required-part.js';

const ROOT = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'vm-required-part-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(
  join(dir, 'needs-part.test.ts'),
  `import { describe, it } from 'vitest';
import { requirePart } from ${JSON.stringify(join(ROOT, 'test/required-part.ts'))};
const ok = requirePart({ name: 'frobnicator', present: false, install: 'apt-get install frobnicator', suite: 'needs a frobnicator' });
describe.skipIf(!ok)('needs a frobnicator', () => { it('uses it', () => {}); });
`,
);
writeFileSync(join(dir, 'vitest.config.mjs'), `export default { test: { include: [${JSON.stringify(join(dir, '*.test.ts'))}] } };\n`);

function runVitest(ci: string | undefined) {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1' };
  if (ci !== undefined) env.CI = ci;
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', '--root', dir, '--config', join(dir, 'vitest.config.mjs')], { env, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('a suite whose outside part is missing', () => {
  it('fails the run under CI=true, naming the part and how to install it', () => {
    const r = runVitest('true');
    expect(r.status, r.out).toBe(1);
    expect(r.out).toContain('frobnicator is available');
    expect(r.out).toContain('apt-get install frobnicator');
  });

  it('is skipped with a banner on a developer machine (exit 0)', () => {
    const r = runVitest(undefined);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/SKIPPED: frobnicator is missing, so "needs a frobnicator" cannot run: apt-get install frobnicator/);
  });

  it('reads CI the way CI services set it', () => {
    expect([onCi({ CI: 'true' }), onCi({ CI: '1' }), onCi({ CI: 'yes' })]).toEqual([true, true, true]);
    expect([onCi({}), onCi({ CI: '' }), onCi({ CI: '0' }), onCi({ CI: 'false' })]).toEqual([false, false, false, false]);
  });
});
