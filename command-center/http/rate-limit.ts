/**
 * Abuse limits: token buckets per client IP, per operator identity and per agent node; a cap on concurrent SSE
 * streams per identity; a request timeout for everything that is not a stream or a long-poll. Streams and long-polls
 * are the routes marked with `longRequest` (long-request.ts).
 *
 * - The bucket map is bounded: a bucket that has refilled completely is the same as no bucket, so idle ones are
 *   swept; past `maxKeys` the least recently used go first.
 * - Client IP: the socket peer (`getConnInfo`). `CF-Connecting-IP` is believed only with `trustProxy`. Without it, a
 *   loopback peer is the local tunnel/proxy (every request through cloudflared comes from 127.0.0.1), so loopback
 *   peers are not IP-limited: limiting them would throttle the whole fleet and every operator as one client.
 * - Agent routes: requests naming an approved node are checked against that node's bucket before the route runs
 *   but charged only once the signature verified (`nodeId` set), so a forger cannot drain a real node's bucket.
 *   Everything else on the agent API (enrollment, unknown nodes) is charged to the IP.
 * - Headers follow draft-ietf-httpapi-ratelimit-headers: `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`
 *   (seconds until the bucket is full again); a 429 carries `Retry-After` (seconds until one request fits).
 */
import type { Context, MiddlewareHandler } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import { VaultMeshError } from '../../protocol/errors.js';
import { SIGNATURE_HEADERS } from '../../protocol/request-signing.js';
import type { CenterConfig } from '../config.js';
import { longRequestKind } from './long-request.js';
import type { AppEnv } from '../services.js';
import { realTimers, type Timers } from '../../lib/timers.js';
import { whenStreamEnds } from './stream-end.js';

export interface BucketSpec {
  /** Sustained rate. */
  perSec: number;
  /** Bucket size: the burst admitted after idling. */
  burst: number;
}

export interface BucketResult {
  ok: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the bucket is full again. */
  resetSecs: number;
  /** Seconds until one request fits (0 when ok). */
  retryAfterSecs: number;
}

export interface TokenBuckets {
  /** Takes `cost` tokens if they are there. */
  take(key: string, cost?: number): BucketResult;
  /** Like take, without taking. */
  peek(key: string, cost?: number): BucketResult;
  /** Takes even if that leaves the bucket negative (charging after the fact). */
  charge(key: string, cost?: number): void;
  /** Drops buckets that have refilled completely. */
  sweep(): void;
  readonly size: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export function createTokenBuckets(spec: BucketSpec, opts: { now?: () => number; maxKeys?: number } = {}): TokenBuckets {
  const now = opts.now ?? Date.now;
  const maxKeys = opts.maxKeys ?? 100_000;
  const buckets = new Map<string, Bucket>();
  const fullAfterMs = (spec.burst / spec.perSec) * 1000;

  const current = (key: string, t: number): Bucket => {
    const b = buckets.get(key);
    if (!b) return { tokens: spec.burst, at: t };
    buckets.delete(key); // re-inserted by the caller: the map stays in least-recently-used order
    return { tokens: Math.min(spec.burst, b.tokens + ((t - b.at) / 1000) * spec.perSec), at: t };
  };
  const store = (key: string, b: Bucket) => {
    buckets.set(key, b);
    if (buckets.size > maxKeys) {
      sweepAt(b.at);
      while (buckets.size > maxKeys) buckets.delete(buckets.keys().next().value as string);
    }
  };
  const result = (b: Bucket, ok: boolean, cost: number): BucketResult => ({
    ok,
    limit: spec.burst,
    remaining: Math.max(0, Math.floor(b.tokens)),
    resetSecs: Math.max(0, Math.ceil((spec.burst - b.tokens) / spec.perSec)),
    retryAfterSecs: ok ? 0 : Math.max(1, Math.ceil((cost - b.tokens) / spec.perSec)),
  });
  const sweepAt = (t: number) => {
    for (const [k, b] of buckets) {
      if (t - b.at < fullAfterMs) break; // LRU order: everything after this was used more recently
      buckets.delete(k);
    }
  };
  return {
    take(key, cost = 1) {
      const t = now();
      const b = current(key, t);
      const ok = b.tokens >= cost;
      if (ok) b.tokens -= cost;
      store(key, b);
      return result(b, ok, cost);
    },
    peek(key, cost = 1) {
      const t = now();
      const b = current(key, t);
      store(key, b);
      return result(b, b.tokens >= cost, cost);
    },
    charge(key, cost = 1) {
      const t = now();
      const b = current(key, t);
      b.tokens -= cost;
      store(key, b);
    },
    sweep: () => sweepAt(now()),
    get size() {
      return buckets.size;
    },
  };
}

export function rateLimitHeaders(r: BucketResult): Record<string, string> {
  return { 'ratelimit-limit': String(r.limit), 'ratelimit-remaining': String(r.remaining), 'ratelimit-reset': String(r.resetSecs) };
}

export function rateLimitedError(r: BucketResult, what: string): VaultMeshError {
  return new VaultMeshError('RATE_LIMITED', `too many requests from this ${what}: retry in ${r.retryAfterSecs} s`, { status: 429 });
}

export interface AbuseLimitsConfig {
  /** false: no token buckets (the SSE cap and the timeout still apply). */
  buckets: boolean;
  ip: BucketSpec;
  identity: BucketSpec;
  node: BucketSpec;
  /** Per client address on POST /api/agent/enroll, on top of the address bucket: enrollment is unauthenticated. */
  enroll: BucketSpec;
  trustProxy: boolean;
  /** Concurrent SSE streams (routes marked `longRequest('stream')`) per identity. */
  sseMaxPerIdentity: number;
  /** Requests other than streams and long-polls (routes marked `longRequest`) fail with 503 after this long. */
  requestTimeoutMs: number;
}

export interface AbuseLimits {
  config: AbuseLimitsConfig;
  /** Per-IP bucket (operator API, console, events) and per-node bucket (agent API). Mount before the routes. */
  clientLimit(): MiddlewareHandler<AppEnv>;
  /** Per-identity bucket and SSE cap. Mount after `identify` (require-operator.ts). */
  identityLimit(): MiddlewareHandler<AppEnv>;
  requestTimeout(): MiddlewareHandler<AppEnv>;
  /** Open SSE streams per identity name (for tests and metrics). */
  openStreams(name: string): number;
  sweep(): void;
  start(): void;
  stop(): void;
}

export const LOOPBACK = /^(?:127\.|::1$|::ffff:127\.)/;

/**
 * The bucket key of a client address. One IPv6 host usually holds a whole /64 (SLAAC, privacy addresses), so an IPv6
 * client is keyed by its /64; IPv4-mapped IPv6 addresses are their IPv4 address.
 */
export function addressKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1]!;
  if (!ip.includes(':')) return ip;
  const [head = '', tail = ''] = ip.toLowerCase().split('::', 2);
  const h = head ? head.split(':') : [];
  const t = ip.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = ip.includes('::') ? [...h, ...new Array(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t] : h;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/** The client address: socket peer, or CF-Connecting-IP when the proxy is trusted. `undefined` in-process. */
export function clientIp(c: Context, trustProxy: boolean): string | undefined {
  if (trustProxy) {
    const cf = c.req.header('cf-connecting-ip')?.trim();
    if (cf && /^[0-9A-Fa-f:.]{2,45}$/.test(cf)) return cf;
  }
  try {
    return getConnInfo(c).remote.address;
  } catch {
    return undefined; // app.request() in tests: no socket
  }
}

function isAgentPath(path: string): boolean {
  return path === '/api/agent' || path.startsWith('/api/agent/');
}

function setHeaders(c: Context, r: BucketResult): void {
  for (const [k, v] of Object.entries(rateLimitHeaders(r))) c.header(k, v);
}

function reject(c: Context, r: BucketResult, what: string): never {
  setHeaders(c, r);
  c.header('retry-after', String(r.retryAfterSecs));
  throw rateLimitedError(r, what);
}

/**
 * Makes `onEnd` run exactly once when the client goes or the stream ends: through the stream's own announcement
 * when it makes one (stream-end.ts), else by wrapping the body.
 */
function onStreamEnd(res: Response, onEnd: () => void): Response {
  if (!res.body) {
    onEnd();
    return res;
  }
  if (whenStreamEnds(res.body, onEnd)) return res;
  let ended = false;
  const end = () => {
    if (!ended) {
      ended = true;
      onEnd();
    }
  };
  const reader = res.body.getReader();
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { value, done } = await reader.read();
          if (done) {
            end();
            controller.close();
          } else controller.enqueue(value);
        } catch (err) {
          end();
          controller.error(err);
        }
      },
      async cancel(reason) {
        end();
        await reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}

export function createAbuseLimits(config: AbuseLimitsConfig, opts: { now?: () => number; maxKeys?: number; timers?: Timers } = {}): AbuseLimits {
  const timers = opts.timers ?? realTimers;
  const bucketOpts = { ...(opts.now ? { now: opts.now } : {}), ...(opts.maxKeys ? { maxKeys: opts.maxKeys } : {}) };
  const ipBuckets = createTokenBuckets(config.ip, bucketOpts);
  const idBuckets = createTokenBuckets(config.identity, bucketOpts);
  const nodeBuckets = createTokenBuckets(config.node, bucketOpts);
  const enrollBuckets = createTokenBuckets(config.enroll, bucketOpts);
  const streams = new Map<string, number>();
  let timer: unknown;

  const sweep = () => {
    ipBuckets.sweep();
    idBuckets.sweep();
    nodeBuckets.sweep();
    enrollBuckets.sweep();
  };

  return {
    config,
    openStreams: (name) => streams.get(name) ?? 0,
    sweep,
    start() {
      timer ??= timers.setInterval(sweep, 60_000);
    },
    stop() {
      if (timer !== undefined) timers.clearInterval(timer);
      timer = undefined;
    },

    clientLimit() {
      return async function clientLimit(c, next) {
        const path = c.req.path;
        if (!config.buckets || path === '/healthz') return next();
        const services = c.get('services');
        const ip = clientIp(c, config.trustProxy);
        const ipKey = ip !== undefined && (config.trustProxy || !LOOPBACK.test(ip)) ? addressKey(ip) : undefined;
        if (ipKey && path === '/api/agent/enroll') {
          const r = enrollBuckets.take(ipKey);
          if (!r.ok) reject(c, r, 'address');
        }
        if (isAgentPath(path)) {
          const claimed = c.req.header(SIGNATURE_HEADERS.node);
          const node = claimed ? services.state.nodes.get(claimed) : undefined;
          if (node && node.enrollment === 'approved') {
            const r = nodeBuckets.peek(node.node_id);
            if (!r.ok) reject(c, r, 'node');
            await next();
            // Charged only when the request proved to come from that node.
            if (c.get('nodeId') === node.node_id) nodeBuckets.charge(node.node_id);
            else if (ipKey) ipBuckets.charge(ipKey);
            setHeaders(c, nodeBuckets.peek(node.node_id));
            return;
          }
          if (ipKey) {
            const r = ipBuckets.take(ipKey);
            if (!r.ok) reject(c, r, 'address');
            setHeaders(c, r);
          }
          return next();
        }
        if (ipKey) {
          const r = ipBuckets.take(ipKey);
          if (!r.ok) reject(c, r, 'address');
          await next();
          if (!c.res.headers.has('ratelimit-limit')) setHeaders(c, r);
          return;
        }
        return next();
      };
    },

    identityLimit() {
      return async function identityLimit(c, next) {
        const identity = c.get('identity');
        if (!identity) return next(); // the route answers 401 (or shows the login page)
        const key = `${identity.via}:${identity.name}`;
        if (config.buckets) {
          const r = idBuckets.take(key);
          if (!r.ok) reject(c, r, 'identity');
          setHeaders(c, r);
          if (longRequestKind(c) !== 'stream') {
            await next();
            setHeaders(c, r);
            return;
          }
        } else if (longRequestKind(c) !== 'stream') return next();
        const open = streams.get(key) ?? 0;
        if (open >= config.sseMaxPerIdentity) {
          throw new VaultMeshError('TOO_MANY_STREAMS', `at most ${config.sseMaxPerIdentity} concurrent event streams per identity; close one first`, { status: 429 });
        }
        streams.set(key, open + 1);
        let released = false;
        const release = () => {
          if (released) return;
          released = true;
          const n = (streams.get(key) ?? 1) - 1;
          if (n <= 0) streams.delete(key);
          else streams.set(key, n);
        };
        try {
          await next();
        } catch (err) {
          release();
          throw err;
        }
        if (c.res.status !== 200 || !c.res.body) release();
        else c.res = onStreamEnd(c.res, release);
      };
    },

    requestTimeout() {
      return async function requestTimeout(c, next) {
        if (longRequestKind(c)) return next();
        let t: unknown;
        const timedOut = new Promise<never>((_, rej) => {
          t = timers.setTimeout(() => {
            c.header('retry-after', '1');
            rej(new VaultMeshError('REQUEST_TIMEOUT', `the request took longer than ${config.requestTimeoutMs / 1000} s; retry (writes with an id or Idempotency-Key are safe to retry)`, { status: 503 }));
          }, config.requestTimeoutMs);
        });
        try {
          await Promise.race([next(), timedOut]);
        } finally {
          timers.clearTimeout(t);
        }
      };
    },
  };
}

/** The limits a center runs with, from its configuration. */
export function abuseLimitsFromConfig(config: CenterConfig, opts: { timers?: Timers } = {}): AbuseLimits {
  return createAbuseLimits({
    buckets: config.rateLimit,
    identity: { perSec: config.rateLimitPerSec, burst: config.rateLimitBurst },
    ip: { perSec: config.rateLimitIpPerSec, burst: config.rateLimitIpBurst },
    node: { perSec: config.rateLimitNodePerSec, burst: config.rateLimitNodeBurst },
    enroll: { perSec: config.rateLimitEnrollPerSec, burst: config.rateLimitEnrollBurst },
    trustProxy: config.trustProxy,
    sseMaxPerIdentity: config.sseMaxPerIdentity,
    requestTimeoutMs: config.requestTimeoutSecs * 1000,
  }, opts);
}
