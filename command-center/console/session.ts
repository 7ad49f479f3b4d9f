/**
 * Console sessions: an operator signs in once with a token (admin or scoped) and gets an HttpOnly, SameSite=Strict
 * cookie holding a random session id. Only the SHA-256 of the id is kept (in memory, with an expiry), so a heap dump
 * or log line never yields a usable cookie. Each session has its own CSRF token; a state-changing request that rides
 * on the cookie must present it (form field `_csrf` or header `x-csrf-token`) and must not come from another origin.
 */
import type { Context } from 'hono';
import { randomBytes } from 'node:crypto';
import { VaultMeshError } from '../../protocol/errors.js';
import type { Identity } from '../auth/operator-auth.js';
import { hashSecret, newSecret, secretMatches } from '../auth/secrets.js';
import { readForm } from '../http/http-errors.js';

export const SESSION_COOKIE = 'vm_session';
export const CSRF_FIELD = '_csrf';
export const CSRF_HEADER = 'x-csrf-token';
export const DEFAULT_SESSION_TTL_MS = 12 * 3600 * 1000;

export interface Session {
  identity: Identity;
  /** SHA-256 hex of the CSRF token (the token itself is handed to the page, never stored). */
  csrfHash: string;
  /** The CSRF token, kept so pages rendered later in the session can embed it. */
  csrfToken: string;
  createdAt: number;
  expiresAt: number;
}

export interface SessionStore {
  /** Starts a session; the returned `id` goes into the cookie and is not kept. */
  create(identity: Identity): { id: string; session: Session };
  /** The live session for a cookie value, or undefined (unknown or expired). */
  lookup(id: string): Session | undefined;
  destroy(id: string): void;
  /** Whether a session looked up earlier is still live: not signed out, not expired, its token not revoked. */
  alive(session: Session): boolean;
  readonly size: number;
  readonly ttlMs: number;
}

export function createSessionStore(opts: { ttlMs?: number; now?: () => number; random?: (n: number) => Buffer; maxSessions?: number } = {}): SessionStore {
  const ttlMs = opts.ttlMs ?? DEFAULT_SESSION_TTL_MS;
  const now = opts.now ?? Date.now;
  const random = opts.random ?? randomBytes;
  const maxSessions = opts.maxSessions ?? 10_000;
  const byHash = new Map<string, Session>();
  // Sessions that ended: what outlives a request (an open console stream) asks `alive` instead of holding the id.
  const ended = new WeakSet<Session>();
  const drop = (h: string) => {
    const s = byHash.get(h);
    if (s) ended.add(s);
    byHash.delete(h);
  };
  const prune = (t: number) => {
    for (const [h, s] of byHash) if (s.expiresAt <= t) drop(h);
    // Insertion order is creation order: drop the oldest when an attacker (or a script) logs in in a loop.
    while (byHash.size >= maxSessions) drop(byHash.keys().next().value as string);
  };
  return {
    create(identity) {
      const t = now();
      prune(t);
      const id = newSecret('vms', 32, random);
      const csrfToken = random(24).toString('base64url');
      const session: Session = { identity: { ...identity, via: 'session' }, csrfHash: hashSecret(csrfToken), csrfToken, createdAt: t, expiresAt: t + ttlMs };
      byHash.set(hashSecret(id), session);
      return { id, session };
    },
    lookup(id) {
      if (!/^vms_[A-Za-z0-9_-]{20,100}$/.test(id)) return undefined;
      const h = hashSecret(id);
      const s = byHash.get(h);
      if (!s) return undefined;
      // A session ends with its own expiry, or as soon as the token it was started with is revoked or expires.
      if (s.expiresAt <= now() || (s.identity.stillValid && !s.identity.stillValid())) {
        drop(h);
        return undefined;
      }
      return s;
    },
    destroy(id) {
      drop(hashSecret(id));
    },
    alive(s) {
      return !ended.has(s) && s.expiresAt > now() && (!s.identity.stillValid || s.identity.stillValid());
    },
    get size() {
      return byHash.size;
    },
    ttlMs,
  };
}

/** Reads one cookie from the Cookie header (no dependency on a cookie library for one name). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function isHttps(c: Context): boolean {
  // Behind cloudflared the hop to us is plain HTTP; the tunnel says what the browser used.
  return new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto') === 'https';
}

export function sessionCookie(c: Context, id: string, maxAgeSecs: number): string {
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSecs}${isHttps(c) ? '; Secure' : ''}`;
}

export function clearedSessionCookie(c: Context): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${isHttps(c) ? '; Secure' : ''}`;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Same-origin check for cookie-borne POSTs. Sec-Fetch-Site is set by the browser (page script cannot forge it) and
 * decides when present: same-origin, or none (typed URL, bookmark). Without it (older clients), an Origin header
 * must name this host. Origin alone is not enough in browsers: under `Referrer-Policy: no-referrer` a same-origin
 * form post carries `Origin: null`.
 */
export function crossOriginReason(c: Context): string | undefined {
  const site = c.req.header('sec-fetch-site');
  if (site !== undefined) return site === 'same-origin' || site === 'none' ? undefined : `Sec-Fetch-Site is ${site}`;
  const origin = c.req.header('origin');
  if (origin !== undefined) {
    if (origin === 'null') return 'Origin is null';
    const host = c.req.header('x-forwarded-host') ?? c.req.header('host') ?? new URL(c.req.url).host;
    let originHost: string;
    try {
      originHost = new URL(origin).host;
    } catch {
      return 'Origin is malformed';
    }
    if (!host || originHost !== host) return `Origin ${origin} is not this site`;
  }
  return undefined;
}

/** The CSRF token a request presents: header first, then the urlencoded/multipart form field. */
export async function presentedCsrfToken(c: Context): Promise<string | undefined> {
  const header = c.req.header(CSRF_HEADER);
  if (header) return header;
  const type = c.req.header('content-type') ?? '';
  if (/^(application\/x-www-form-urlencoded|multipart\/form-data)/i.test(type)) {
    // Hono caches the parsed body, so the route handler can still read the form afterwards.
    const form = await readForm(c);
    const v = form[CSRF_FIELD];
    return typeof v === 'string' ? v : undefined;
  }
  return undefined;
}

/** Throws 403 CSRF_REJECTED unless the unsafe request is same-origin and carries this session's token. */
export async function assertCsrf(c: Context, session: Session): Promise<void> {
  const reason = crossOriginReason(c);
  if (reason) throw new VaultMeshError('CSRF_REJECTED', `cross-site request refused: ${reason}`, { status: 403 });
  const token = await presentedCsrfToken(c);
  if (!token || !secretMatches(token, session.csrfHash)) {
    throw new VaultMeshError('CSRF_REJECTED', `missing or wrong CSRF token (form field ${CSRF_FIELD} or header ${CSRF_HEADER})`, { status: 403 });
  }
}

/**
 * The console session behind a request's cookie (the cookie value is the credential; `lookup` is its authenticator).
 * Valid on any route, console and operator API alike; on an unsafe method it counts only with this session's CSRF
 * token from this site, so a cookie can never be ridden cross-site: otherwise `refusal` says why.
 */
export async function resolveSession(c: Context, sessions: SessionStore): Promise<{ session?: Session; refusal?: VaultMeshError }> {
  const id = readCookie(c.req.header('cookie'), SESSION_COOKIE);
  const session = id ? sessions.lookup(id) : undefined;
  if (!session) return {};
  if (SAFE_METHODS.has(c.req.method)) return { session };
  try {
    await assertCsrf(c, session);
    return { session };
  } catch (err) {
    if (err instanceof VaultMeshError) return { refusal: err };
    throw err;
  }
}
