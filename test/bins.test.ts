import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './process-helpers.js';

const run = promisify(execFile);
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

describe('bins through npx in the repo root', () => {
  it.each(['vaultmesh', 'vaultmesh-cc', 'vaultmesh-agent'])('npx %s --version and --help', async (bin) => {
    const v = await run('npx', ['--yes', bin, '--version'], { cwd: ROOT, timeout: 60_000 });
    expect(v.stdout.split(' ')[0]).toBe(`${bin}/${version}`); // the one VERSION, read from package.json
    const h = await run('npx', ['--yes', bin, '--help'], { cwd: ROOT, timeout: 60_000 });
    expect(h.stdout).toMatch(/Usage:/);
  }, 120_000);
});
