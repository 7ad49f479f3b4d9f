/**
 * Scoped API tokens for bots and scripts. A token (`vmtok_<43 base64url chars>`, 256 random bits) is shown once
 * when created; the center keeps only its SHA-256. Create and revoke are journaled as `api_token` envelopes in
 * events.jsonl, so tokens survive restarts through replay (`applyApiTokenEnvelope`, pure). The last-used time is
 * operational data, not a fact: it lives in memory and is flushed to `<state dir>/api-token-usage.json` every
 * `flushMs` (when it changed) and on shutdown, so a crash loses at most one period of last-used updates.
 */
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import type { Envelope } from '../../protocol/envelope.js';
import { writeFileAtomicSync } from '../../lib/atomic-file.js';
import type { Authenticator, Identity, Scope } from './operator-auth.js';
import { hashSecret, secretMatches } from './secrets.js';

export const API_TOKEN_KIND = 'api_token';
export const API_TOKEN_PREFIX = 'vmtok';
export const SCOPES: readonly Scope[] = ['admin', 'events:read', 'events:write', 'nodes:read', 'nodes:approve', 'commands:write', 'metrics:read', 'ledger:read'];

export const scopeSchema = z.enum(SCOPES as [Scope, ...Scope[]]);
export const tokenNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, 'must be 1-64 of A-Z a-z 0-9 . _ @ - starting with a letter or digit');
export const tokenIdSchema = z.string().regex(/^[a-f0-9]{12}$/, 'must be 12 lowercase hex digits');

export interface ApiTokenRecord {
  token_id: string;
  name: string;
  scopes: Scope[];
  token_sha256: string;
  created_at: string;
  created_by: string;
  /** null = never expires. */
  expires_at: string | null;
  revoked_at?: string;
  revoked_by?: string;
}

export interface ApiTokenState {
  byId: Map<string, ApiTokenRecord>;
  /** token hash → token id. */
  byHash: Map<string, string>;
}

export function createApiTokenState(): ApiTokenState {
  return { byId: new Map(), byHash: new Map() };
}

const createBodySchema = z.object({
  action: z.literal('create'),
  token_id: tokenIdSchema,
  name: tokenNameSchema,
  scopes: z.array(scopeSchema).min(1),
  token_sha256: z.string().regex(/^[a-f0-9]{64}$/),
  expires_at: z.string().nullable(),
});
const revokeBodySchema = z.object({ action: z.literal('revoke'), token_id: tokenIdSchema });
export const apiTokenBodySchema = z.discriminatedUnion('action', [createBodySchema, revokeBodySchema]);

/** The reducer for `api_token` envelopes (called by fleet-state's applyEnvelope). Malformed bodies change nothing. */
export function applyApiTokenEnvelope(state: ApiTokenState, env: Envelope): void {
  const parsed = apiTokenBodySchema.safeParse(env.body);
  if (!parsed.success) return;
  const b = parsed.data;
  if (b.action === 'create') {
    if (state.byId.has(b.token_id)) return;
    state.byId.set(b.token_id, {
      token_id: b.token_id,
      name: b.name,
      scopes: [...new Set(b.scopes)],
      token_sha256: b.token_sha256,
      created_at: env.ts,
      created_by: env.author,
      expires_at: b.expires_at,
    });
    state.byHash.set(b.token_sha256, b.token_id);
    return;
  }
  const t = state.byId.get(b.token_id);
  if (!t || t.revoked_at) return;
  t.revoked_at = env.ts;
  t.revoked_by = env.author;
  state.byHash.delete(t.token_sha256);
}

export type ApiTokenStatus = 'active' | 'expired' | 'revoked';

export function tokenStatus(t: ApiTokenRecord, nowMs: number): ApiTokenStatus {
  if (t.revoked_at) return 'revoked';
  if (t.expires_at !== null && Date.parse(t.expires_at) <= nowMs) return 'expired';
  return 'active';
}

/** What `GET /api/tokens` shows: never the hash. */
export function tokenView(t: ApiTokenRecord, nowMs: number, lastUsed: string | undefined) {
  return {
    token_id: t.token_id,
    name: t.name,
    scopes: t.scopes,
    status: tokenStatus(t, nowMs),
    created_at: t.created_at,
    created_by: t.created_by,
    expires_at: t.expires_at,
    last_used: lastUsed ?? null,
    ...(t.revoked_at ? { revoked_at: t.revoked_at, revoked_by: t.revoked_by } : {}),
  };
}

/** The identity name a token acts as (the `author` of what it does). */
export function tokenIdentityName(t: ApiTokenRecord): string {
  return `token:${t.name}`;
}

export interface ApiTokenUsage {
  /** Records a successful use (in memory). */
  touch(tokenId: string): void;
  lastUsed(tokenId: string): string | undefined;
  /** Writes the usage file if anything changed since the last flush. */
  flush(): void;
  start(): void;
  /** Stops the timer and flushes. */
  stop(): void;
}

/** Last-used times: memory, flushed to a small JSON file periodically and on stop. */
export function createApiTokenUsage(opts: { file?: string; now?: () => Date; flushMs?: number; onError?: (err: unknown) => void }): ApiTokenUsage {
  const now = opts.now ?? (() => new Date());
  const flushMs = opts.flushMs ?? 60_000;
  const used = new Map<string, string>();
  let dirty = false;
  let timer: NodeJS.Timeout | undefined;
  if (opts.file && existsSync(opts.file)) {
    try {
      const raw = JSON.parse(readFileSync(opts.file, 'utf8')) as unknown;
      if (raw && typeof raw === 'object') {
        for (const [id, ts] of Object.entries(raw as Record<string, unknown>)) if (typeof ts === 'string' && tokenIdSchema.safeParse(id).success) used.set(id, ts);
      }
    } catch (err) {
      opts.onError?.(err); // a damaged usage file costs last-used times only, never tokens
    }
  }
  const flush = () => {
    if (!dirty || !opts.file) return;
    dirty = false;
    try {
      writeFileAtomicSync(opts.file, `${JSON.stringify(Object.fromEntries(used))}\n`, 0o600);
    } catch (err) {
      dirty = true;
      opts.onError?.(err);
    }
  };
  return {
    touch(id) {
      used.set(id, now().toISOString());
      dirty = true;
    },
    lastUsed: (id) => used.get(id),
    flush,
    start() {
      timer ??= setInterval(flush, flushMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      flush();
    },
  };
}

const TOKEN_SHAPE = /^vmtok_[A-Za-z0-9_-]{43}$/;

/**
 * The Bearer authenticator for scoped tokens: a `vmtok_...` token whose hash names a live token.
 * The map lookup is by hash (timing reveals nothing about the secret); the final comparison is constant-time.
 */
export function apiTokenAuthenticator(deps: { state: () => ApiTokenState; usage: ApiTokenUsage; now: () => Date }): Authenticator {
  return (token) => {
    if (!TOKEN_SHAPE.test(token)) return undefined;
    const state = deps.state();
    const hash = hashSecret(token);
    const id = state.byHash.get(hash);
    const t = id === undefined ? undefined : state.byId.get(id);
    if (!t || !secretMatches(token, t.token_sha256)) return undefined;
    if (tokenStatus(t, deps.now().getTime()) !== 'active') return undefined;
    deps.usage.touch(t.token_id);
    const tokenId = t.token_id;
    const identity: Identity = {
      via: 'api-token',
      name: tokenIdentityName(t),
      scopes: new Set(t.scopes),
      stillValid: () => {
        const now = deps.state().byId.get(tokenId);
        return now !== undefined && tokenStatus(now, deps.now().getTime()) === 'active';
      },
    };
    return identity;
  };
}
