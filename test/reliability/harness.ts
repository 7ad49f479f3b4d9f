/**
 * Shared set-up for the reliability suite: a real center child process with the abuse limits lifted (one test
 * client sends thousands of requests from 127.0.0.1) and the attention sweep slowed (so nothing but the test's own
 * requests writes to the journals), an enrolled node, and snapshots of observable state.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import type { KeyPair } from '../../protocol/keys.js';
import { signRequest } from '../../protocol/request-signing.js';
import { setupNode } from '../crash-round.js';
import { heartbeatBody } from '../helpers.js';
import { spawnCenter, type CenterProcess } from '../process-helpers.js';

export const RELIABILITY_ENV = { VAULTMESH_RATE_LIMIT: '0', VAULTMESH_SSE_MAX_PER_IDENTITY: '10000', VAULTMESH_ATTENTION_CHECK_SECS: '3600' };

export interface ReliabilityCenter extends CenterProcess {
  dir: string;
  logDir: string;
  token: string;
  pid: number;
  stop(): Promise<void>;
}

export async function startReliabilityCenter(dir: string, extraArgs: string[] = [], env: Record<string, string> = {}): Promise<ReliabilityCenter> {
  const cc = await spawnCenter(['--log-dir', join(dir, 'logs'), '--state-dir', join(dir, 'state'), ...extraArgs], { ...RELIABILITY_ENV, ...env });
  const token = readFileSync(join(dir, 'state', 'admin.token'), 'utf8').trim();
  return Object.assign(cc, {
    dir,
    logDir: join(dir, 'logs'),
    token,
    pid: cc.child.pid!,
    async stop() {
      if (cc.child.exitCode !== null || cc.child.signalCode !== null) return;
      cc.child.kill('SIGTERM');
      const t = setTimeout(() => cc.child.kill('SIGKILL'), 10_000);
      await cc.exited;
      clearTimeout(t);
    },
  });
}

export async function adminCall(url: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await request(url + path, { method: method as 'GET', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.body.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = text;
  }
  return { status: res.statusCode, json };
}

export async function enrollNode(cc: ReliabilityCenter, nodeId: string): Promise<{ id: string; key: KeyPair }> {
  return { id: nodeId, key: await setupNode(cc.url, cc.token, nodeId) };
}

export async function sendHeartbeat(url: string, node: { id: string; key: KeyPair }, extra: Record<string, unknown> = {}): Promise<{ status: number; json: any }> {
  const body = JSON.stringify(heartbeatBody(node.id, extra));
  const res = await request(`${url}/api/agent/heartbeat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...signRequest({ method: 'POST', path: '/api/agent/heartbeat', nodeId: node.id, body }, node.key) },
    body,
  });
  const text = await res.body.text();
  return { status: res.statusCode, json: text ? JSON.parse(text) : undefined };
}

/** Sizes of every *.jsonl journal (and ledger file) in the log dir. */
export function journalSizes(logDir: string): Record<string, number> {
  const out: Record<string, number> = {};
  if (!existsSync(logDir)) return out;
  for (const f of readdirSync(logDir).sort()) out[f] = statSync(join(logDir, f)).size;
  return out;
}

/** Every journal is valid JSONL: complete lines, each a JSON object with a seq, seqs increasing per file. */
export function checkJournalsValid(logDir: string): string[] {
  const problems: string[] = [];
  for (const f of readdirSync(logDir).filter((f) => f.endsWith('.jsonl'))) {
    const text = readFileSync(join(logDir, f), 'utf8');
    if (text.length && !text.endsWith('\n')) problems.push(`${f}: does not end with a newline`);
    let last = 0;
    text.split('\n').forEach((line, i) => {
      if (!line) return;
      try {
        const e = JSON.parse(line);
        if (typeof e.seq !== 'number' || e.seq <= last) problems.push(`${f}:${i + 1}: seq ${e.seq} after ${last}`);
        last = e.seq;
      } catch {
        problems.push(`${f}:${i + 1}: not JSON`);
      }
    });
  }
  return problems;
}

/** What an operator sees of the fleet, without the time-dependent fields. */
export async function fleetSnapshot(cc: { url: string; token: string }): Promise<unknown> {
  const nodes = await adminCall(cc.url, cc.token, 'GET', '/api/nodes');
  const tokens = await adminCall(cc.url, cc.token, 'GET', '/api/join-tokens');
  const commands = await adminCall(cc.url, cc.token, 'GET', '/api/commands');
  const keys = await adminCall(cc.url, cc.token, 'GET', '/api/keys');
  return {
    nodes: (nodes.json as any[]).map(({ status: _s, ...rest }) => rest),
    tokens: tokens.json,
    commands: commands.status === 200 ? commands.json : commands.status,
    // The center key, any prepared next key and the rotations: bad input must rotate or prepare nothing.
    keys: keys.status === 200 ? (({ previous: _p, ...k }: any) => k)(keys.json) : keys.status,
  };
}

export function rssMbOf(pid: number): number {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return (Number(/^VmRSS:\s+(\d+) kB/m.exec(s)?.[1]) * 1024) / 1e6;
}
