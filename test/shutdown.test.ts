/**
 * Graceful shutdown of the real `vaultmesh-cc` process: SIGTERM in the middle of concurrent heartbeat load (and
 * with an SSE client connected) exits 0 within a few seconds, and every heartbeat the center acknowledged is in the
 * journal exactly once.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import type { KeyPair } from '../protocol/keys.js';
import { signRequest } from '../protocol/request-signing.js';
import { setupNode } from './crash-round.js';
import { heartbeatBody, openSse, tempDir } from './helpers.js';
import { spawnCenter } from './process-helpers.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function journaledHeartbeatIds(logDir: string): string[] {
  const ids: string[] = [];
  for (const f of readdirSync(logDir).filter((n) => /^heartbeats(-\d+)?\.jsonl$/.test(n)).sort()) {
    for (const line of readFileSync(join(logDir, f), 'utf8').split('\n')) if (line) ids.push(JSON.parse(line).id);
  }
  return ids;
}

describe('graceful shutdown', () => {
  it('SIGTERM under heartbeat load: exit 0 within a few seconds, no acknowledged heartbeat lost or doubled', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const logDir = join(t.dir, 'logs');
    const cc = await spawnCenter(['--log-dir', logDir, '--state-dir', join(t.dir, 'state')]);
    cleanups.push(() => cc.child.kill('SIGKILL'));
    const token = readFileSync(join(t.dir, 'state', 'admin.token'), 'utf8').trim();
    const nodes: Array<{ id: string; key: KeyPair }> = [];
    for (const id of ['s1', 's2', 's3', 's4']) nodes.push({ id, key: await setupNode(cc.url, token, id) });
    const sse = await openSse(`${cc.url}/events`, { authorization: `Bearer ${token}` });
    expect(sse.status).toBe(200);

    const acked: string[] = [];
    let refused = 0;
    let stop = false;
    let n = 0;
    const worker = async (node: { id: string; key: KeyPair }) => {
      while (!stop) {
        const id = `${node.id}-hb-${n++}`;
        const body = JSON.stringify(heartbeatBody(node.id, { id }));
        try {
          const res = await request(`${cc.url}/api/agent/heartbeat`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...signRequest({ method: 'POST', path: '/api/agent/heartbeat', nodeId: node.id, body }, node.key) },
            body,
          });
          const text = await res.body.text();
          if (res.statusCode === 200) acked.push(id);
          else throw new Error(`unexpected ${res.statusCode}: ${text}`);
        } catch (err) {
          const code = (err as { code?: string }).code ?? '';
          if (!code.startsWith('UND_ERR') && code !== 'ECONNRESET' && code !== 'ECONNREFUSED') throw err;
          refused++; // the center stopped accepting: never acknowledged
          return;
        }
      }
    };
    const workers = [...nodes, ...nodes].map(worker);
    while (acked.length < 200) await new Promise((r) => setTimeout(r, 10));

    const t0 = Date.now();
    cc.child.kill('SIGTERM');
    const code = await cc.exited;
    const elapsed = Date.now() - t0;
    stop = true;
    await Promise.all(workers);
    await sse.close();

    expect(code).toBe(0);
    expect(elapsed).toBeLessThan(5000);
    expect(cc.output()).toContain('stopped cleanly');
    const ids = journaledHeartbeatIds(logDir);
    const counts = new Map<string, number>();
    for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
    expect(acked.filter((id) => counts.get(id) !== 1)).toEqual([]);
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    console.log(`shutdown after ${acked.length} acknowledged heartbeats in ${elapsed} ms (${refused} workers refused afterwards)`);

    // A restart replays exactly what was acknowledged (and anything durable that had no reply yet).
    const cc2 = await spawnCenter(['--log-dir', logDir, '--state-dir', join(t.dir, 'state')]);
    cleanups.push(() => cc2.child.kill('SIGKILL'));
    const res = await request(`${cc2.url}/api/nodes/s1`, { headers: { authorization: `Bearer ${token}` } });
    const s1 = (await res.body.json()) as { heartbeat_count: number };
    expect(s1.heartbeat_count).toBe(ids.filter((id) => id.startsWith('s1-')).length);
    cc2.child.kill('SIGTERM');
    expect(await cc2.exited).toBe(0);
  }, 60_000);
});
