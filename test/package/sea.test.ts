/**
 * The single executables (scripts/build-sea.mjs) on a host with no Node: every program runs under `env -i` (no
 * PATH, so no node to find) from an empty directory with no node_modules above it. The single-file agent enrolls
 * and heartbeats against the single-file center, the single-file CLI approves it, and the center serves the
 * console from its embedded views, htmx and CSS.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, assertBuilt } from '../process-helpers.js';
import { enrollAndHeartbeat, expectConsoleServed, run, startCenter, type Programs } from './fleet.js';
// @ts-expect-error a build script without type declarations
import { buildSea } from '../../scripts/build-sea.mjs';

const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
const NO_ENV: Record<string, string> = {};

describe('single executables with no Node on the host', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'vm-sea-'));
  const empty = join(tmp, 'empty');
  let programs: Programs;

  beforeAll(async () => {
    assertBuilt();
    mkdirSync(empty);
    const built = (await buildSea({ out: join(tmp, 'bin') })) as { name: string; path: string; bytes: number }[];
    const path = (name: string) => built.find((b) => b.name === name)!.path;
    programs = { cc: path('vaultmesh-cc'), agent: path('vaultmesh-agent'), cli: path('vaultmesh') };
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it.each(['vaultmesh-cc', 'vaultmesh-agent', 'vaultmesh'] as const)('%s is one executable file and reports the package version under env -i', async (name) => {
    const bin = { 'vaultmesh-cc': programs.cc, 'vaultmesh-agent': programs.agent, vaultmesh: programs.cli }[name];
    expect(statSync(bin).mode & 0o111).toBeTruthy();
    const r = await run(bin, ['--version'], { env: NO_ENV, cwd: empty });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split(' ')[0]).toBe(`${name}/${version}`);
    expect(r.stderr).toBe(''); // no "single executable applications are experimental" warning
  });

  // Stronger than env -i: the host's node binary and global modules are hidden in a private mount namespace.
  it.runIf(process.getuid?.() === 0 && existsSync('/usr/bin/unshare'))('runs with /usr/bin/node and /usr/lib/node_modules hidden (root: unshare --mount)', async () => {
    const hide = [process.execPath, '/usr/bin/node', '/usr/local/bin/node'].filter((p, i, all) => existsSync(p) && all.indexOf(p) === i);
    const script = [...hide.map((p) => `mount --bind /dev/null ${p}`), 'for d in /usr/lib/node_modules /usr/local/lib/node_modules; do if [ -d $d ]; then mount -t tmpfs none $d || exit 1; fi; done', `for b in "$@"; do "$b" --version || exit 1; done`].join(' && ');
    const r = await run('/usr/bin/unshare', ['--mount', '/bin/sh', '-c', script, 'sh', programs.cc, programs.agent, programs.cli], { env: NO_ENV, cwd: empty });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').map((l) => l.split(' ')[0])).toEqual([`vaultmesh-cc/${version}`, `vaultmesh-agent/${version}`, `vaultmesh/${version}`]);
  });

  it('the single-file agent enrolls and heartbeats against the single-file center; the console is served', async () => {
    const center = await startCenter(programs.cc, ['--log-dir', join(tmp, 'logs'), '--state-dir', join(tmp, 'cc-state')], { env: NO_ENV, cwd: empty });
    try {
      const node = await enrollAndHeartbeat(programs, { url: center.url, ccStateDir: join(tmp, 'cc-state'), agentStateDir: join(tmp, 'node/agent'), nodeId: 'sea-1', env: NO_ENV, cwd: empty });
      expect(node).toMatchObject({ status: 'ok', agent_version: version });
      await expectConsoleServed(center.url);
    } finally {
      expect(await center.stop()).toBe(0);
    }
  });
});
