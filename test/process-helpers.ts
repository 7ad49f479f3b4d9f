/** Real child processes for tests: the built center and agent from dist/. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..');
export const CC_BIN = join(ROOT, 'dist/command-center/main.js');
export const AGENT_BIN = join(ROOT, 'dist/node-agent/main.js');
export const CLI_BIN = join(ROOT, 'dist/cli/main.js');

/**
 * Rebuilds dist/ from the current sources as `npm run build` does: tsc (which emits even when other files have type
 * errors), then the CLI bundle (scripts/bundle-cli.mjs, via postbuild), so dist/cli/main.js stays the bundle.
 */
export function rebuildDist(): void {
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
