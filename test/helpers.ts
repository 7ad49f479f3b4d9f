/** Shared test helpers: temp dirs, an in-process center on port 0, signed agent calls, a real SSE client. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { generateKeyPair, type KeyPair } from '../protocol/keys.js';
import { signRequest } from '../protocol/request-signing.js';
import { resolveCenterConfig, type CenterConfig } from '../command-center/config.js';
import { composeCenter, startCenter, type CenterOptions, type ComposedCenter, type RunningCenter } from '../command-center/center.js';
import type { Logger } from '../lib/logger.js';
import { readFileSync } from 'node:fs';
import { afterEach } from 'vitest';

export const quietLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };

export function tempDir(prefix = 'vm-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TestCenter extends RunningCenter {
  dir: string;
  adminToken: string;
  config: CenterConfig;
  api<T = any>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; json: T; headers: Record<string, unknown> }>;
}

export async function startTestCenter(dir: string, overrides: Partial<Record<keyof CenterConfig, unknown>> = {}, opts: { now?: () => Date; keepaliveMs?: number; streamCheckMs?: number } = {}): Promise<TestCenter> {
  const config = resolveCenterConfig({ port: 0, logDir: join(dir, 'logs'), stateDir: join(dir, 'state'), ...overrides }, {});
  const center = await startCenter(config, { log: quietLogger, ...opts });
  const adminToken = readFileSync(center.adminTokenFile, 'utf8').trim();
  return Object.assign(center, {
    dir,
    adminToken,
    config,
    async api(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
      const res = await request(center.url + path, {
        method: method as 'GET',
        headers: { authorization: `Bearer ${adminToken}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      });
      const text = await res.body.text();
      return { status: res.statusCode, json: text ? JSON.parse(text) : undefined, headers: res.headers };
    },
  });
}

/**
 * A real set of services without an HTTP server (journals and state in `dir`), for tests that drive services or
 * `createApp(services).request()` in-process. Close it like a center.
 */
export async function composeTestCenter(dir: string, overrides: Partial<Record<keyof CenterConfig, unknown>> = {}, opts: CenterOptions = {}): Promise<ComposedCenter & { config: CenterConfig; adminToken: string }> {
  const config = resolveCenterConfig({ port: 0, logDir: join(dir, 'logs'), stateDir: join(dir, 'state'), fsync: 'off', ...overrides }, {});
  const center = await composeCenter(config, { log: quietLogger, ...opts });
  return Object.assign(center, { config, adminToken: readFileSync(center.adminTokenFile, 'utf8').trim() });
}

export interface TestNode {
  id: string;
  key: KeyPair;
  send(method: 'GET' | 'POST', path: string, body?: unknown, opts?: { now?: () => Date; headers?: Record<string, string> }): Promise<{ status: number; json: any }>;
}

export function testNode(center: { url: string }, id: string, key = generateKeyPair()): TestNode {
  return {
    id,
    key,
    async send(method, path, body, opts = {}) {
      const text = body === undefined ? '' : JSON.stringify(body);
      const headers = {
        ...signRequest({ method, path, nodeId: id, body: text }, key, opts.now ? { now: opts.now } : {}),
        ...(method === 'POST' ? { 'content-type': 'application/json' } : {}),
        ...opts.headers,
      };
      const res = await request(center.url + path, { method, headers, ...(method === 'POST' ? { body: text } : {}) });
      const t = await res.body.text();
      return { status: res.statusCode, json: t ? JSON.parse(t) : undefined };
    },
  };
}

export function heartbeatBody(nodeId: string, extra: Record<string, unknown> = {}) {
  return {
    node_id: nodeId,
    hostname: `${nodeId}.example`,
    os_profile: 'debian',
    cloudflare_ok: true,
    services_ok: true,
    vaultmesh_root: '/var/lib/vaultmesh',
    timestamp: new Date().toISOString(),
    agent_version: '0.1.0',
    metrics: { load: [0.1, 0.2, 0.3], mem_used_bytes: 1e9, mem_total_bytes: 4e9, disk_used_bytes: 1e10, disk_total_bytes: 1e11, uptime_s: 1234 },
    ...extra,
  };
}

/** Creates a join token and enrolls (and, unless told otherwise, approves) a node. */
export async function enrolledNode(center: TestCenter, id: string, opts: { approve?: boolean } = {}): Promise<TestNode> {
  const tok = await center.api('POST', '/api/join-tokens', { uses: 1 });
  const node = testNode(center, id);
  const r = await node.send('POST', '/api/agent/enroll', {
    token: tok.json.token,
    node_id: id,
    hostname: `${id}.example`,
    os_profile: 'debian',
    public_key: node.key.publicKeyHex,
    agent_version: '0.1.0',
    facts: {},
  });
  if (r.status >= 300) throw new Error(`enroll failed: ${JSON.stringify(r.json)}`);
  if (opts.approve !== false) {
    const a = await center.api('POST', `/api/nodes/${id}/approve`);
    if (a.status !== 200) throw new Error(`approve failed: ${JSON.stringify(a.json)}`);
  }
  return node;
}

export interface SseEvent {
  event?: string;
  id?: string;
  data: string;
}

/** A real SSE client over HTTP: collects parsed events; `waitFor` resolves when a predicate matches. */
export async function openSse(url: string, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal });
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const waiters: Array<{ pred: (e: SseEvent) => boolean; resolve: (e: SseEvent) => void }> = [];
  let closed = false;
  const pump = (async () => {
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let idx;
        while ((idx = buf.indexOf('\n\n')) !== -1) {
          const block = buf.slice(0, idx);
          buf = buf.slice(idx + 2);
          const ev: SseEvent = { data: '' };
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line.slice(1).trim());
            else if (line.startsWith('event: ')) ev.event = line.slice(7);
            else if (line.startsWith('id: ')) ev.id = line.slice(4);
            else if (line.startsWith('data: ')) data.push(line.slice(6));
          }
          if (!data.length) continue;
          ev.data = data.join('\n');
          events.push(ev);
          for (const w of [...waiters]) if (w.pred(ev)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(ev);
          }
        }
      }
    } catch {
      // aborted
    } finally {
      closed = true;
    }
  })();
  return {
    status: res.status,
    events,
    comments,
    get closed() {
      return closed;
    },
    /** Resolves when the server ends the stream (or it is closed here). */
    ended: pump,
    waitFor(pred: (e: SseEvent) => boolean, timeoutMs = 5000): Promise<SseEvent> {
      const found = events.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`SSE event not received in ${timeoutMs} ms; got ${events.map((e) => e.event).join(',')}`)), timeoutMs);
        waiters.push({ pred, resolve: (e) => (clearTimeout(t), resolve(e)) });
      });
    },
    close() {
      controller.abort();
      return pump;
    },
  };
}

/** Registers cleanups (servers, temp dirs, child processes) run after each test, newest first. */
export function cleanupAfterEach(): (fn: () => Promise<void> | void) => void {
  const list: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const fn of list.splice(0).reverse()) await fn();
  });
  return (fn) => void list.push(fn);
}

/**
 * Timers that fire only when a test says so: `fireAll()` runs every interval once; `advance(ms)` moves a manual
 * clock and runs, in due order, the timeouts and interval periods that fall within it (`nowMs` is that clock).
 */
export function manualTimers(startMs = 0): {
  timers: import('../lib/timers.js').Timers;
  fireAll(): void;
  advance(ms: number): void;
  readonly nowMs: number;
  readonly active: number;
  readonly pending: number;
} {
  const intervals = new Map<number, { fn: () => void; ms: number; due: number }>();
  const timeouts = new Map<number, { fn: () => void; due: number }>();
  let next = 1;
  let nowMs = startMs;
  return {
    timers: {
      setInterval: (fn, ms) => {
        intervals.set(next, { fn, ms: Math.max(1, ms), due: nowMs + Math.max(1, ms) });
        return next++;
      },
      clearInterval: (h) => void intervals.delete(h as number),
      setTimeout: (fn, ms) => {
        timeouts.set(next, { fn, due: nowMs + Math.max(0, ms) });
        return next++;
      },
      clearTimeout: (h) => void timeouts.delete(h as number),
    },
    fireAll: () => {
      for (const { fn } of [...intervals.values()]) fn();
    },
    advance(ms) {
      const until = nowMs + ms;
      for (;;) {
        let first: { id: number; due: number; kind: 'timeout' | 'interval' } | undefined;
        for (const [id, t] of timeouts) if (t.due <= until && (!first || t.due < first.due)) first = { id, due: t.due, kind: 'timeout' };
        for (const [id, t] of intervals) if (t.due <= until && (!first || t.due < first.due)) first = { id, due: t.due, kind: 'interval' };
        if (!first) break;
        nowMs = Math.max(nowMs, first.due);
        if (first.kind === 'timeout') {
          const t = timeouts.get(first.id)!;
          timeouts.delete(first.id);
          t.fn();
        } else {
          const t = intervals.get(first.id)!;
          t.due += t.ms;
          t.fn();
        }
      }
      nowMs = until;
    },
    get nowMs() {
      return nowMs;
    },
    get active() {
      return intervals.size;
    },
    get pending() {
      return timeouts.size;
    },
  };
}
