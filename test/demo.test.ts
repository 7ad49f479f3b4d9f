import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach, tempDir } from './helpers.js';
import { ROOT } from './process-helpers.js';

const onCleanup = cleanupAfterEach();

describe('npm run demo', () => {
  it('shows three live nodes in GET /api/nodes within seconds', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const demo = spawn(process.execPath, [join(ROOT, 'dist/command-center/demo.js')], { cwd: t.dir, env: { ...process.env, VAULTMESH_PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    onCleanup(() => new Promise<void>((r) => (demo.exitCode !== null ? r() : (demo.once('exit', () => r()), demo.kill('SIGTERM')))));
    let out = '';
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
    });
    const token = readFileSync(join(t.dir, 'state', 'admin.token'), 'utf8').trim();
    const deadline = Date.now() + 15_000;
    let nodes: Array<{ node_id: string; status: string }> = [];
    while (Date.now() < deadline) {
      const res = await request(`${url}/api/nodes`, { headers: { authorization: `Bearer ${token}` } });
      nodes = (await res.body.json()) as typeof nodes;
      if (nodes.length === 3 && nodes.every((n) => n.status === 'ok')) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(nodes.map((n) => `${n.node_id}:${n.status}`)).toEqual(['demo-db-01:ok', 'demo-edge-01:ok', 'demo-web-01:ok']);
  }, 40_000);
});
