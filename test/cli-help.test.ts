/**
 * The command table (cli/command-table.ts) against the built `vaultmesh`: every command's --help shows its usage,
 * every option with its description and every example, the top-level help lists every command, and a command
 * loads only its own action module (`--help` loads none).
 */
import { cac } from 'cac';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../cli/command-table.js';
import { CLI_BIN, ROOT, assertBuilt, runNode } from './process-helpers.js';

let tmp: string;
beforeAll(() => {
  assertBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'vaultmesh-cli-help-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The command modules (cli/commands/*.ts) by name: `logs`, `keys`, ... */
const COMMAND_MODULES = new Set(readdirSync(join(ROOT, 'cli/commands')).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts')).map((f) => f.slice(0, -3)));

/**
 * Runs the built CLI with a module hook that lists the command modules it loads: tsc's `dist/cli/commands/<name>.js`,
 * or the bundle's chunk for it, `dist/cli/chunks/<name>-<hash>.js` (scripts/bundle-cli.mjs; shared chunks are
 * `chunk-<hash>.js`).
 */
async function runTraced(args: string[], bin = CLI_BIN): Promise<{ code: number | null; stdout: string; stderr: string; loaded: string[]; files: string[]; packages: string[] }> {
  const log = join(tmp, `loaded-${Math.random().toString(36).slice(2)}.txt`);
  writeFileSync(log, '');
  const hooks = join(tmp, 'hooks.mjs');
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs';\nexport async function resolve(spec, ctx, next) {\n  const r = await next(spec, ctx);\n  if (r.url.startsWith('file:')) appendFileSync(${JSON.stringify(log)}, r.url + '\\n');\n  return r;\n}\n`,
  );
  const register = join(tmp, 'register.mjs');
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  const r = await runNode('--import', [pathToFileURL(register).href, bin, ...args]);
  const urls = readFileSync(log, 'utf8').split('\n').filter(Boolean);
  const files = urls.filter((u) => u.includes('/dist/cli/')).map((u) => u.replace(/^.*\/dist\/cli\//, ''));
  const packages = urls.filter((u) => u.includes('/node_modules/'));
  const loaded = files.map((f) => /^(?:commands\/([\w-]+)\.js|chunks\/([\w-]+?)-[A-Z0-9]{8}\.js)$/.exec(f)).flatMap((m) => (m ? [m[1] ?? m[2]!] : [])).filter((name) => COMMAND_MODULES.has(name));
  return { ...r, loaded, files, packages };
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
    expect(stats.loaded).toEqual(['logs']);

    const keys = await runTraced(['keys', 'show', '--state-dir', empty]);
    expect(keys.code).toBe(1);
    expect(keys.stderr).toMatch(/no command-center key/);
    expect(keys.loaded).toEqual(['keys']);
  });

  it('the installed vaultmesh is the bundle: a command reads a few chunks and nothing from node_modules (zod included)', async () => {
    const empty = mkdtempSync(join(tmp, 'nodes-'));
    // `nodes list` loads its module (zod, the API client, the answer's schemas) and stops at the missing token.
    const args = ['nodes', 'list', '--state-dir', empty, '--admin-socket-off', '--cc-url', 'http://127.0.0.1:9'];
    const bundled = await runTraced(args);
    expect(bundled.code).toBe(2);
    expect(bundled.stderr).toMatch(/NO_TOKEN/);
    expect(bundled.loaded).toEqual(['operator']);
    expect(bundled.files[0]).toBe('main.js');
    expect(bundled.files.filter((f) => !f.startsWith('chunks/'))).toEqual(['main.js']);
    expect(bundled.packages).toEqual([]);
    // tsc's output of the same program (kept for the benchmark's baseline) reads ≈ 110 files, 95 of them zod's.
    const unbundled = await runTraced(args, join(ROOT, 'dist/cli/main.unbundled.js'));
    expect(unbundled.code).toBe(2);
    expect(unbundled.stderr).toBe(bundled.stderr);
    expect(unbundled.loaded).toEqual(['operator']);
    expect(unbundled.packages.filter((u) => u.includes('/node_modules/zod/')).length).toBeGreaterThan(50);
    expect(bundled.files.length * 3).toBeLessThan(unbundled.files.length + unbundled.packages.length);
    const bundle = readFileSync(CLI_BIN, 'utf8');
    expect(bundle.startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(bundle).toContain('//# sourceMappingURL=main.js.map');
  });
});
