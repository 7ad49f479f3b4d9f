/**
 * The single executables (scripts/build-sea.mjs) on a host with no Node: every program runs under `env -i` (no
 * PATH, so no node to find) from an empty directory with no node_modules above it. The single-file agent enrolls
 * and heartbeats against the single-file center, the single-file CLI approves it, and the center serves the
 * console from its embedded views, htmx and CSS.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
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
