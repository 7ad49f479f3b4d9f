/**
 * The command table (cli/command-table.ts) against the built `vaultmesh`: every command's --help shows its usage,
 * every option with its description and every example, the top-level help lists every command, and a command
 * loads only its own action module (`--help` loads none).
 */
import { cac } from 'cac';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../cli/command-table.js';
import { CLI_BIN, assertBuilt, runNode } from './process-helpers.js';

let tmp: string;
beforeAll(() => {
  assertBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'vaultmesh-cli-help-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs the built CLI with a module hook that lists every file: URL it loads under dist/cli/commands/. */
async function runTraced(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; loaded: string[] }> {
  const log = join(tmp, `loaded-${Math.random().toString(36).slice(2)}.txt`);
  writeFileSync(log, '');
  const hooks = join(tmp, 'hooks.mjs');
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs';\nexport async function resolve(spec, ctx, next) {\n  const r = await next(spec, ctx);\n  if (r.url.includes('/dist/cli/commands/')) appendFileSync(${JSON.stringify(log)}, r.url.replace(/^.*\\/dist\\/cli\\//, '') + '\\n');\n  return r;\n}\n`,
  );
  const register = join(tmp, 'register.mjs');
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  const r = await runNode('--import', [pathToFileURL(register).href, CLI_BIN, ...args]);
  return { ...r, loaded: readFileSync(log, 'utf8').split('\n').filter(Boolean) };
}

describe('vaultmesh help from the command table', () => {
  it('the top-level help lists every command with its description, and loads no command module', async () => {
    const r = await runTraced(['--help']);
    expect(r.code, r.stderr).toBe(0);
    for (const entry of COMMANDS) {
      const cmd = entry.define(cac('vaultmesh'));
      expect(r.stdout).toContain(cmd.rawName);
      expect(r.stdout).toContain(cmd.description);
      expect(r.stdout).toContain(`$ vaultmesh ${entry.name} --help`);
    }
    expect(r.loaded).toEqual([]);
  });

  it.each(COMMANDS.map((e) => [e.name, e] as const))('vaultmesh %s --help shows its usage, every option and example', async (name, entry) => {
    const cmd = entry.define(cac('vaultmesh'));
    expect(cmd.options.length).toBeGreaterThan(0);
    const r = await runTraced([name, '--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`$ vaultmesh ${cmd.usageText || cmd.rawName}`.split('\n')[0]!);
    for (const opt of cmd.options) {
      expect(r.stdout).toContain(opt.rawName);
      expect(r.stdout).toContain(opt.description);
    }
    for (const ex of cmd.examples) if (typeof ex === 'string' && ex) expect(r.stdout).toContain(ex);
    expect(r.loaded).toEqual([]);
  });

  it('a command that runs loads only its own module', async () => {
    const empty = mkdtempSync(join(tmp, 'logs-'));
    const stats = await runTraced(['logs', 'stats', '--dir', empty, '--json']);
    expect(stats.code, stats.stderr).toBe(0);
    expect(JSON.parse(stats.stdout).fleet.total).toBe(0);
    expect(stats.loaded).toEqual(['commands/logs.js']);

    const keys = await runTraced(['keys', 'show', '--state-dir', empty]);
    expect(keys.code).toBe(1);
    expect(keys.stderr).toMatch(/no command-center key/);
    expect(keys.loaded).toEqual(['commands/keys.js']);
  });
});
