import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach, tempDir } from './helpers.js';
import { AGENT_BIN, CC_BIN, ROOT, assertBuilt } from './process-helpers.js';

const onCleanup = cleanupAfterEach();
const DEMO_BIN = join(ROOT, 'dist/command-center/demo.js');
/** No center settings from the environment running the tests. */
const CLEAN_ENV = { VAULTMESH_PORT: '', VAULTMESH_HOST: '', VAULTMESH_LOG_DIR: '', VAULTMESH_STATE_DIR: '' };

/** A listener on 127.0.0.1 holding a port (closed after the test). */
async function holdPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.address() as { port: number }).port, server };
}

/** Runs a bin in `cwd` to its end; a bin still running after 20 s gets SIGTERM (so a demo stops its agents). */
function run(bin: string, args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, ...CLEAN_ENV, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => child.kill('SIGTERM'), 20_000);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A port that was free a moment ago. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('npm run demo', () => {
  it('honours --port, keeps its own ./demo dirs and shows three live nodes with distinct hostnames', async () => {
    assertBuilt();
    const t = tempDir();
    onCleanup(t.cleanup);
    const port = await freePort();
    const demo = spawn(process.execPath, [DEMO_BIN, '--port', String(port)], { cwd: t.dir, env: { ...process.env, ...CLEAN_ENV }, stdio: ['ignore', 'pipe', 'pipe'] });
    onCleanup(() => new Promise<void>((r) => (demo.exitCode !== null ? r() : (demo.once('exit', () => r()), demo.kill('SIGTERM')))));
    let out = '';
    demo.stderr!.on('data', (d) => (out += d));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`demo did not start:\n${out}`)), 15_000);
      demo.stdout!.on('data', (d) => {
        out += d;
        const m = /open (http:\/\/\S+)\/console/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      demo.once('exit', (code) => reject(new Error(`demo exited with ${code}:\n${out}`)));
    });
    expect(url).toBe(`http://127.0.0.1:${port}`);
    // Its own dirs: nothing in ./state or ./logs, where `npm start` keeps the real center's.
    const token = readFileSync(join(t.dir, 'demo', 'state', 'admin.token'), 'utf8').trim();
    expect(existsSync(join(t.dir, 'demo', 'logs'))).toBe(true);
    expect(existsSync(join(t.dir, 'state'))).toBe(false);
    expect(existsSync(join(t.dir, 'logs'))).toBe(false);

    const deadline = Date.now() + 15_000;
    let nodes: Array<{ node_id: string; hostname: string; status: string }> = [];
    while (Date.now() < deadline) {
      const res = await request(`${url}/api/nodes`, { headers: { authorization: `Bearer ${token}` } });
      nodes = (await res.body.json()) as typeof nodes;
      if (nodes.length === 3 && nodes.every((n) => n.status === 'ok')) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(nodes.map((n) => `${n.node_id}:${n.status}`)).toEqual(['demo-db-01:ok', 'demo-edge-01:ok', 'demo-web-01:ok']);
    expect(nodes.map((n) => n.hostname)).toEqual(['db-01.demo.internal', 'edge-01.demo.internal', 'web-01.demo.internal']);
    expect(existsSync(join(t.dir, 'demo', 'logs', 'events.jsonl'))).toBe(true);
  }, 40_000);
});

describe('help', () => {
  it('the demo lists the center\'s flags; the agent lists its hostname setting', async () => {
    assertBuilt();
    const t = tempDir();
    onCleanup(t.cleanup);
    const [demo, cc, agent] = await Promise.all([run(DEMO_BIN, ['--help'], t.dir), run(CC_BIN, ['--help'], t.dir), run(AGENT_BIN, ['--help'], t.dir)]);
    const flags = (text: string) => [...text.matchAll(/^\s+(--[a-z-]+)/gm)].map((m) => m[1]).filter((f) => f !== '--help' && f !== '--version');
    expect(flags(demo.stdout)).toEqual(flags(cc.stdout));
    expect(flags(demo.stdout)).toContain('--port');
    expect(agent.stdout).toMatch(/--hostname <name> .*VAULTMESH_HOSTNAME/);
  });
});

describe('a busy port', () => {
  it.each([
    ['vaultmesh-cc', CC_BIN],
    ['the demo', DEMO_BIN],
  ])('%s says so in one line and exits 1', { timeout: 30_000 }, async (_name, bin) => {
    assertBuilt();
    const t = tempDir();
    onCleanup(t.cleanup);
    const { port } = await holdPort();
    const r = await run(bin, ['--port', String(port), '--log-dir', join(t.dir, 'logs'), '--state-dir', join(t.dir, 'state')], t.dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`vaultmesh-cc: port ${port} on 127.0.0.1 is in use; pick another with --port\n`);
  });
});
