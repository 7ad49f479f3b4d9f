/**
 * The npm tarball as a user installs it: `npm pack`, `npm install -g` into a scratch prefix, then the three programs
 * from that prefix's bin/ with the cwd somewhere else entirely: --version, and a center and an agent that enroll
 * and heartbeat, the console served with its views and htmx.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, assertBuilt } from '../process-helpers.js';
import { enrollAndHeartbeat, expectConsoleServed, run, startCenter, type Programs } from './fleet.js';
import { readFileSync } from 'node:fs';

const exec = promisify(execFile);
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

describe('npm pack → npm install -g → programs on PATH', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'vm-npm-global-'));
  const prefix = join(tmp, 'prefix');
  const elsewhere = join(tmp, 'elsewhere');
  // PATH: the prefix's bin/ and the node running this test, nothing from the checkout.
  const env = { PATH: `${join(prefix, 'bin')}:${dirname(process.execPath)}:/usr/bin:/bin`, HOME: tmp, NO_COLOR: '1' };
  let programs: Programs;

  beforeAll(async () => {
    assertBuilt();
    mkdirSync(elsewhere);
    // dist/ is fresh (npm run test:package builds first); prepack would build it again.
    await exec('npm', ['pack', '--ignore-scripts', '--pack-destination', tmp], { cwd: ROOT, timeout: 120_000 });
    const tgz = readdirSync(tmp).find((f) => f.endsWith('.tgz'));
    expect(tgz).toBe(`vaultmesh-command-center-${version}.tgz`);
    await exec('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', join(tmp, tgz!)], { cwd: elsewhere, timeout: 300_000, env: { ...process.env, npm_config_update_notifier: 'false' } });
    programs = { cc: join(prefix, 'bin/vaultmesh-cc'), agent: join(prefix, 'bin/vaultmesh-agent'), cli: join(prefix, 'bin/vaultmesh') };
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('installs the runtime only: no dev dependencies, no sources, no tests', () => {
    const pkgDir = join(prefix, 'lib/node_modules/vaultmesh-command-center');
    const deps = readdirSync(join(pkgDir, 'node_modules'));
    for (const dev of ['typescript', 'vitest', 'esbuild', 'postject', 'playwright-core']) expect(deps).not.toContain(dev);
    expect(deps).toContain('htmx.org');
    expect(existsSync(join(pkgDir, 'command-center'))).toBe(false);
    expect(existsSync(join(pkgDir, 'views/console.eta'))).toBe(true);
  });

  it.each(['vaultmesh-cc', 'vaultmesh-agent', 'vaultmesh'])('%s --version, by name on PATH, from another directory', async (bin) => {
    const r = await run(bin, ['--version'], { env, cwd: elsewhere });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split(' ')[0]).toBe(`${bin}/${version}`);
  });

  it('a center and an agent from the prefix enroll and heartbeat; the console has its views and htmx', async () => {
    const center = await startCenter('vaultmesh-cc', ['--log-dir', join(tmp, 'logs'), '--state-dir', join(tmp, 'cc-state')], { env, cwd: elsewhere });
    try {
      const node = await enrollAndHeartbeat(
        { cc: programs.cc, agent: 'vaultmesh-agent', cli: 'vaultmesh' },
        { url: center.url, ccStateDir: join(tmp, 'cc-state'), agentStateDir: join(tmp, 'node/agent'), nodeId: 'npm-1', env, cwd: elsewhere },
      );
      expect(node).toMatchObject({ status: 'ok', agent_version: version });
      await expectConsoleServed(center.url);
    } finally {
      expect(await center.stop()).toBe(0);
    }
  });
});
