/**
 * Suites that drive a real outside part (a browser, a built binary) must never pass by silently not running. Under
 * CI (`CI` set to anything but empty, 0 or false) a missing part is a failing test that names it and says how to
 * install it; on a developer machine the suite is skipped with a loud banner on stderr.
 */
import { it } from 'vitest';

export function onCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = (env.CI ?? '').trim().toLowerCase();
  return v !== '' && v !== '0' && v !== 'false';
}

/**
 * Whether the part is there. When it is not: under CI, registers a test `<name> is available` that fails with the
 * install hint; elsewhere, prints a banner. Either way the caller skips the suite that needs it
 * (`describe.skipIf(!requirePart(...))`).
 */
export function requirePart(part: { name: string; present: boolean; install: string; suite: string }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (part.present) return true;
  const message = `${part.name} is missing, so "${part.suite}" cannot run: ${part.install}`;
  if (onCi(env)) {
    it(`${part.name} is available (needed by "${part.suite}")`, () => {
      throw new Error(`${message} (CI=${env.CI}: a missing part fails the run instead of skipping it)`);
    });
  } else {
    const bar = '!'.repeat(Math.min(100, message.length + 4));
    console.warn(`\n${bar}\n! SKIPPED: ${message}\n! (with CI=true this fails the run)\n${bar}\n`);
  }
  return false;
}
