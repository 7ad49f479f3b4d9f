/**
 * Several `vaultmesh-cc --store postgres` processes (replicas) on one database, for the replica suites: each has its
 * own log dir and a copy of the first one's state dir (the same center key and admin token), as docs/SCALING.md
 * tells operators to run them. Plus the signed agent and operator requests the suites send, a state digest to
 * compare replicas, and `converge` (every replica has applied the log up to the database's head).
 */
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { generateKeyPair, type KeyPair } from '../protocol/keys.js';
import { signRequest } from '../protocol/request-signing.js';
import { summarize } from '../protocol/scan.js';
import { heartbeatBody } from './helpers.js';
import { spawnCenter, type CenterProcess } from './process-helpers.js';

export interface Replica {
  index: number;
  dir: string;
  proc: CenterProcess | undefined;
  url: string;
}

export interface Answer {
  status: number;
  json: any;
}

import { sql } from './postgres.js';

export { sql };

export class ReplicaSet {
  readonly replicas: Replica[] = [];
  token = '';

  constructor(
    readonly dbUrl: string,
    readonly base: string,
    readonly count: number,
    readonly extraArgs: string[] = [],
  ) {
    for (let i = 0; i < count; i++) this.replicas.push({ index: i, dir: join(base, `r${i}`), proc: undefined, url: '' });
  }

  args(i: number): string[] {
    const dir = this.replicas[i]!.dir;
    return ['--store', 'postgres', '--database-url', this.dbUrl, '--log-dir', join(dir, 'logs'), '--state-dir', join(dir, 'state'), ...this.extraArgs];
  }

  /**
   * The first replica creates the key and token; the others get a copy of its state dir. Starts the first `running`
   * (default: all); the rest can be started later with `spawn` (a fresh replica replaying the log).
   */
  async start(running = this.count): Promise<void> {
    await this.spawn(0);
    this.token = readFileSync(join(this.replicas[0]!.dir, 'state', 'admin.token'), 'utf8').trim();
    for (const r of this.replicas.slice(1)) {
      cpSync(join(this.replicas[0]!.dir, 'state'), join(r.dir, 'state'), { recursive: true, filter: (src) => !src.endsWith('.sock') && !src.endsWith('.lock') });
    }
    await Promise.all(this.replicas.slice(1, running).map((r) => this.spawn(r.index)));
  }

  async spawn(i: number): Promise<void> {
    const r = this.replicas[i]!;
    r.proc = await spawnCenter(this.args(i));
    r.url = r.proc.url;
  }

  async kill9(i: number): Promise<void> {
    const r = this.replicas[i]!;
    if (!r.proc) return;
    r.proc.child.kill('SIGKILL');
    await r.proc.exited;
    r.proc = undefined;
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.replicas.map(async (r) => {
        if (!r.proc) return;
        r.proc.child.kill('SIGTERM');
        await r.proc.exited;
        r.proc = undefined;
      }),
    );
  }

  live(): Replica[] {
    return this.replicas.filter((r) => r.proc);
  }

  async api(i: number, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
    return call(this.replicas[i]!.url, method, path, body, { authorization: `Bearer ${this.token}`, ...headers });
  }

  async head(): Promise<number> {
    return Number((await sql<{ last_seq: string }>(this.dbUrl, 'SELECT last_seq FROM log_head'))[0]!.last_seq);
  }

  /** Resolves once every running replica has applied the log up to the database's head (bounded). */
  async converge(timeoutMs = 10_000): Promise<number> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const head = await this.head();
      const seqs = await Promise.all(this.live().map(async (r) => (await call(r.url, 'GET', '/healthz')).json.seq as number));
      if (seqs.every((s) => s === head)) return head;
      if (Date.now() > end) throw new Error(`replicas did not converge: head ${head}, replicas at ${seqs.join(', ')}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** What a replica's memory holds, through its API, without the parts that depend on the time of asking. */
  async digest(i: number): Promise<unknown> {
    const nodes = (await this.api(i, 'GET', '/api/nodes')).json as Array<Record<string, unknown>>;
    const commands = (await this.api(i, 'GET', '/api/commands?limit=1000')).json;
    const incidents = (await this.api(i, 'GET', '/api/incidents')).json;
    const tokens = (await this.api(i, 'GET', '/api/join-tokens')).json;
    const seq = (await call(this.replicas[i]!.url, 'GET', '/healthz')).json.seq;
    return { seq, nodes: nodes.map(({ status: _status, ...n }) => n), commands, incidents, tokens };
  }
}

export async function call(url: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await request(url + path, {
    method: method as 'GET',
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.body.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = text;
  }
  return { status: res.statusCode, json };
}

/** A node's signed request: the body bytes and the headers, made once (so the very same request can be sent twice). */
export function signedRequest(node: { id: string; key: KeyPair }, method: string, path: string, body?: unknown) {
  const bytes = body === undefined ? '' : JSON.stringify(body);
  return { method, path, bytes, headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...signRequest({ method, path, nodeId: node.id, body: bytes }, node.key) } };
}

export async function send(url: string, req: ReturnType<typeof signedRequest>, signal?: AbortSignal): Promise<Answer> {
  const res = await request(url + req.path, { method: req.method as 'GET', headers: req.headers, ...(req.bytes ? { body: req.bytes } : {}), ...(signal ? { signal } : {}) });
  const text = await res.body.text();
  return { status: res.statusCode, json: text ? JSON.parse(text) : undefined };
}

export const agentCall = (url: string, node: { id: string; key: KeyPair }, method: string, path: string, body?: unknown, signal?: AbortSignal) =>
  send(url, signedRequest(node, method, path, body), signal);

export function enrollBody(nodeId: string, key: KeyPair, token: string) {
  return { token, node_id: nodeId, hostname: nodeId, os_profile: 'debian', public_key: key.publicKeyHex, agent_version: '0.1.0', facts: {} };
}

export function scanBody(nodeId: string, id: string) {
  const now = new Date().toISOString();
  return { id, node_id: nodeId, started_at: now, finished_at: now, agent_version: '0.1.0', trigger: 'manual', findings: [], summary: summarize([], { checks_run: 1, checks_failed: 0 }) };
}

export const heartbeat = (nodeId: string, id: string) => heartbeatBody(nodeId, { id });

/** Enrolls a node on replica `on` with a 1-use token made there, and approves it there. */
export async function enrollNode(set: ReplicaSet, on: number, id: string): Promise<{ id: string; key: KeyPair }> {
  const key = generateKeyPair();
  const tok = await set.api(on, 'POST', '/api/join-tokens', { uses: 1 });
  if (tok.status !== 201) throw new Error(`join token: ${tok.status} ${JSON.stringify(tok.json)}`);
  const node = { id, key };
  const enrolled = await agentCall(set.replicas[on]!.url, node, 'POST', '/api/agent/enroll', enrollBody(id, key, tok.json.token));
  if (enrolled.status !== 202) throw new Error(`enroll: ${enrolled.status} ${JSON.stringify(enrolled.json)}`);
  const approved = await set.api(on, 'POST', `/api/nodes/${id}/approve`);
  if (approved.status !== 200) throw new Error(`approve: ${approved.status} ${JSON.stringify(approved.json)}`);
  return node;
}

export function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** An SSE client on `/events` that records each envelope's seq and when it arrived (performance.now()). */
export async function openStream(url: string, token: string, lastEventId?: number) {
  const controller = new AbortController();
  const res = await fetch(`${url}/events`, {
    headers: { accept: 'text/event-stream', authorization: `Bearer ${token}`, ...(lastEventId !== undefined ? { 'last-event-id': String(lastEventId) } : {}) },
    signal: controller.signal,
  });
  if (res.status !== 200) throw new Error(`SSE: ${res.status}`);
  const seqs: number[] = [];
  const arrived = new Map<number, number>();
  const events: string[] = [];
  const pump = (async () => {
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += dec.decode(value, { stream: true });
        let at;
        while ((at = buf.indexOf('\n\n')) !== -1) {
          const block = buf.slice(0, at);
          buf = buf.slice(at + 2);
          const id = /^id: (\d+)$/m.exec(block)?.[1];
          const event = /^event: (.+)$/m.exec(block)?.[1];
          if (event) events.push(event);
          if (id === undefined) continue;
          seqs.push(Number(id));
          arrived.set(Number(id), performance.now());
        }
      }
    } catch {
      /* closed */
    }
  })();
  return {
    seqs,
    arrived,
    events,
    async waitFor(seq: number, timeoutMs = 10_000) {
      const end = Date.now() + timeoutMs;
      while (!arrived.has(seq)) {
        if (Date.now() > end) throw new Error(`SSE on ${url}: no seq ${seq} (last ${seqs.at(-1)}; events ${events.slice(-3).join(',')})`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async close() {
      controller.abort();
      await pump;
    },
  };
}
