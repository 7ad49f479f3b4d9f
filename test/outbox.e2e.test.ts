/**
 * Offline agents with real processes: a running vaultmesh-agent keeps heartbeating while its center is stopped,
 * buffers in its outbox, and after the center restarts (same port) every buffered heartbeat arrives exactly once,
 * in order.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';
import { AGENT_BIN, assertBuilt, CC_BIN } from './process-helpers.js';

const children: ChildProcess[] = [];
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const c of cleanups.splice(0)) c();
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function startCenter(port: number, dir: string): Promise<{ child: ChildProcess; exited: Promise<number | null> }> {
  assertBuilt();
  const child = spawn(process.execPath, [CC_BIN, '--port', String(port), '--log-dir', join(dir, 'logs'), '--state-dir', join(dir, 'state'), '--auto-approve', '--heartbeat-secs', '1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let out = '';
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`center did not start:\n${out}`)), 15_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('listening on')) {
        clearTimeout(t);
        resolve({ child, exited });
      }
    });
    child.stderr!.on('data', (d: Buffer) => (out += d));
  });
}

interface Hb {
  id: string;
  seq: number;
  node_id: string;
  body: { id?: string; timestamp: string };
}

function heartbeats(dir: string): Hb[] {
  const f = join(dir, 'logs', 'heartbeats.jsonl');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Hb);
}

async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('offline agent outbox (real processes)', () => {
  it('a center stopped for a while then restarted receives every buffered heartbeat exactly once, in order', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const port = await freePort();
    let cc = await startCenter(port, t.dir);
    const token = readFileSync(join(t.dir, 'state', 'admin.token'), 'utf8').trim();
    const jt = await request(`http://127.0.0.1:${port}/api/join-tokens`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
    const joinToken = ((await jt.body.json()) as { token: string }).token;

    const stateDir = join(t.dir, 'agent');
    const agent = spawn(process.execPath, [AGENT_BIN, '--settings', '/nonexistent', '--cc-url', `http://127.0.0.1:${port}`, '--state-dir', stateDir, '--root', t.dir, '--node-id', 'ob-1', '--join-token', joinToken, '--heartbeat-secs', '1', '--cloudflared-check', 'none', '--os-profile', 'debian'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(agent);
    let agentOut = '';
    agent.stdout!.on('data', (d: Buffer) => (agentOut += d));
    agent.stderr!.on('data', (d: Buffer) => (agentOut += d));

    await until(() => heartbeats(t.dir).length >= 2, 15_000, 'first heartbeats');
    cc.child.kill('SIGTERM');
    expect(await cc.exited).toBe(0);
    const downAt = Date.now();
    const before = heartbeats(t.dir);

    // The agent goes on: its heartbeats wait in the outbox.
    const outbox = join(stateDir, 'outbox.jsonl');
    await until(() => existsSync(outbox) && readFileSync(outbox, 'utf8').split('\n').filter(Boolean).length >= 4, 20_000, `4 queued heartbeats\n${agentOut}`);
    expect(agentOut).toMatch(/heartbeat queued in the outbox/);
    const queuedIds = readFileSync(outbox, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { body: { id: string } }).body.id);

    cc = await startCenter(port, t.dir);
    await until(() => readFileSync(outbox, 'utf8') === '' && heartbeats(t.dir).length > before.length + queuedIds.length, 30_000, `outbox flush\n${agentOut}`);
    const upAt = Date.now();

    const all = heartbeats(t.dir);
    const ids = all.map((h) => h.body.id);
    // exactly once
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of queuedIds) expect(ids.filter((x) => x === id)).toHaveLength(1);
    // in order: journal order (seq) follows the agent's own heartbeat times
    const times = all.map((h) => Date.parse(h.body.timestamp));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    // and the queued ones arrived as one ordered block after the restart
    const firstQueued = ids.indexOf(queuedIds[0]!);
    expect(ids.slice(firstQueued, firstQueued + queuedIds.length)).toEqual(queuedIds);
    console.log(`center down ${((upAt - downAt) / 1000).toFixed(1)} s; ${queuedIds.length} heartbeats buffered and delivered once, in order`);

    // The center agrees: heartbeat_count equals the distinct ids.
    const res = await request(`http://127.0.0.1:${port}/api/nodes/ob-1`, { headers: { authorization: `Bearer ${token}` } });
    const node = (await res.body.json()) as { heartbeat_count: number };
    expect(node.heartbeat_count).toBeGreaterThanOrEqual(ids.length);

    agent.kill('SIGTERM');
    cc.child.kill('SIGTERM');
    await cc.exited;
  }, 90_000);
});
