/** Real child processes for tests: the built center and agent from dist/. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..');
export const CC_BIN = join(ROOT, 'dist/command-center/main.js');
export const AGENT_BIN = join(ROOT, 'dist/node-agent/main.js');
export const CLI_BIN = join(ROOT, 'dist/cli/main.js');

/** Newest mtime (ms) of the TypeScript sources that tsc builds into dist/ (tsconfig.json's include). */
function newestSourceMs(): number {
  let newest = 0;
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  for (const d of ['protocol', 'lib', 'command-center', 'node-agent', 'cli']) walk(join(ROOT, d));
  for (const f of ['tsconfig.json', 'scripts/postbuild.mjs', 'scripts/bundle-entry.mjs', 'scripts/bundle-cli.mjs', 'scripts/bundle-center.mjs']) newest = Math.max(newest, statSync(join(ROOT, f)).mtimeMs);
  return newest;
}

/**
 * Makes dist/ current as `npm run build` does (tsc, which emits even when other files have type errors, then the
 * CLI bundle via postbuild), but only when a source is newer than the last complete build (dist/.build-stamp):
 * rebuilding rewrites dist/ file by file, and other test files run centers, agents and the CLI from it meanwhile.
 */
export function rebuildDist(): void {
  const stamp = join(ROOT, 'dist/.build-stamp');
  if (existsSync(stamp) && statSync(stamp).mtimeMs >= newestSourceMs()) return;
  spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.json')], { cwd: ROOT, stdio: 'ignore' });
  spawnSync(process.execPath, [join(ROOT, 'scripts/postbuild.mjs')], { cwd: ROOT, stdio: 'ignore' });
}

export function assertBuilt(): void {
  if (!existsSync(CC_BIN)) throw new Error('dist/ is missing: run `npm run build` (npm test does it first)');
}

export interface CenterProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts `vaultmesh-cc` on a free port and resolves once it prints its URL. */
export async function spawnCenter(args: string[], env: Record<string, string> = {}): Promise<CenterProcess> {
  assertBuilt();
  const child = spawn(process.execPath, [CC_BIN, '--port', '0', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`center did not start:\n${out}`)), 15_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`center exited with ${code}:\n${out}`));
    });
  });
  return { child, url, output: () => out, exited };
}

export function runNode(bin: string, args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}
