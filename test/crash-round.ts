/**
 * One crash round: a real center under concurrent signed heartbeat load is killed with SIGKILL at a random moment
 * and restarted; every acknowledged heartbeat must be in the journal exactly once and in the state.
 * Used by the default suite (a few rounds) and the reliability suite (50 rounds).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { generateKeyPair, type KeyPair } from '../protocol/keys.js';
import { signRequest } from '../protocol/request-signing.js';
import { heartbeatBody } from './helpers.js';
import { spawnCenter } from './process-helpers.js';

export interface CrashRoundResult {
  acked: number;
  lost: number;
  duplicated: number;
  tornTails: number;
}

async function admin(url: string, token: string, method: string, path: string, body?: unknown) {
  const res = await request(url + path, { method: method as 'GET', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return res.body.json() as Promise<any>;
}

export async function setupNode(url: string, token: string, nodeId: string): Promise<KeyPair> {
  const key = generateKeyPair();
  const jt = await admin(url, token, 'POST', '/api/join-tokens', { uses: 1 });
  const body = JSON.stringify({ token: jt.token, node_id: nodeId, hostname: nodeId, os_profile: 'debian', public_key: key.publicKeyHex, agent_version: '0.1.0', facts: {} });
  const res = await request(`${url}/api/agent/enroll`, { method: 'POST', headers: { 'content-type': 'application/json', ...signRequest({ method: 'POST', path: '/api/agent/enroll', nodeId, body }, key) }, body });
  await res.body.dump();
  await admin(url, token, 'POST', `/api/nodes/${nodeId}/approve`);
  return key;
}

/** Where the center keeps its log (default: JSONL in `<dir>/logs`): its extra flags and how to read the heartbeats back. */
export interface CrashStore {
  args: string[];
  heartbeatLines(): Promise<string[]>;
}

export async function crashRound(dir: string, round: number, opts: { loadMs?: number; concurrency?: number; store?: CrashStore } = {}): Promise<CrashRoundResult> {
  const args = ['--log-dir', join(dir, 'logs'), '--state-dir', join(dir, 'state'), ...(opts.store?.args ?? [])];
  const cc = await spawnCenter(args);
  const token = readFileSync(join(dir, 'state', 'admin.token'), 'utf8').trim();
  const nodeId = 'crash-node';
  let key: KeyPair;
  const keyFile = join(dir, 'node.key.json');
  try {
    const k = JSON.parse(readFileSync(keyFile, 'utf8'));
    key = { ...k, seed: Buffer.from(k.seed, 'hex'), publicKey: Buffer.from(k.publicKeyHex, 'hex') };
  } catch {
    key = await setupNode(cc.url, token, nodeId);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(keyFile, JSON.stringify({ seed: Buffer.from(key.seed).toString('hex'), publicKeyHex: key.publicKeyHex, keyId: key.keyId }));
  }
  const acked: string[] = [];
  let stop = false;
  let n = 0;
  const worker = async () => {
    while (!stop) {
      const id = `r${round}-hb-${n++}`;
      const body = JSON.stringify(heartbeatBody(nodeId, { id }));
      try {
        const res = await request(`${cc.url}/api/agent/heartbeat`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...signRequest({ method: 'POST', path: '/api/agent/heartbeat', nodeId, body }, key) },
          body,
        });
        const text = await res.body.text();
        if (res.statusCode === 200) acked.push(id);
        else if (!stop) throw new Error(`unexpected ${res.statusCode}: ${text}`);
      } catch (err) {
        if (!stop && !(err as { code?: string }).code?.startsWith('UND_ERR') && (err as { code?: string }).code !== 'ECONNRESET' && (err as { code?: string }).code !== 'ECONNREFUSED') throw err;
        return; // the center died under us: that request was never acknowledged
      }
    }
  };
  const workers = Array.from({ length: opts.concurrency ?? 8 }, worker);
  await new Promise((r) => setTimeout(r, 50 + Math.random() * (opts.loadMs ?? 400)));
  cc.child.kill('SIGKILL');
  stop = true;
  await Promise.allSettled(workers);
  await cc.exited;

  const cc2 = await spawnCenter(args);
  try {
    const torn = (cc2.output().match(/torn last line/g) ?? []).length;
    const lines = opts.store ? await opts.store.heartbeatLines() : readFileSync(join(dir, 'logs', 'heartbeats.jsonl'), 'utf8').trimEnd().split('\n').filter(Boolean);
    const counts = new Map<string, number>();
    for (const l of lines) {
      const id = JSON.parse(l).id as string;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    const lost = acked.filter((id) => !counts.has(id)).length;
    const duplicated = [...counts.values()].filter((c) => c > 1).length;
    const node = await admin(cc2.url, token, 'GET', `/api/nodes/${nodeId}`);
    if (node.heartbeat_count !== lines.length) throw new Error(`state has ${node.heartbeat_count} heartbeats, journal ${lines.length}`);
    return { acked: acked.length, lost, duplicated, tornTails: torn };
  } finally {
    cc2.child.kill('SIGTERM');
    await cc2.exited;
  }
}
