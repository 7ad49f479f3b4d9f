/**
 * The CLI's client for the operator API (undici): Bearer token from VAULTMESH_TOKEN or the local state dir,
 * clear one-line errors (unreachable, 401/403 with the center's reason, timeout), retries for idempotent calls.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { z } from 'zod';
import { VaultMeshError, describeConnectError, detailsFromZodIssues, parseApiAnswer } from '../protocol/errors.js';
import { assertPrivateFile } from '../lib/key-file.js';

export interface ApiOptions {
  ccUrl?: string;
  token?: string;
  stateDir?: string;
  timeoutMs?: number;
  retries?: number;
}

/** Every call names the shape it expects (cli/answers.ts); an answer of another shape is a BAD_ANSWER error. */
export interface ApiClient {
  get<S extends z.ZodType>(path: string, shape: S): Promise<z.output<S>>;
  post<S extends z.ZodType>(path: string, shape: S, body?: unknown, headers?: Record<string, string>): Promise<z.output<S>>;
  del<S extends z.ZodType>(path: string, shape: S): Promise<z.output<S>>;
  readonly baseUrl: string;
}

const CC_URL = z.url({ protocol: /^https?$/ });

export function resolveToken(opts: ApiOptions, env: NodeJS.ProcessEnv = process.env): string {
  if (opts.token) return opts.token;
  if (env.VAULTMESH_TOKEN) return env.VAULTMESH_TOKEN;
  const file = join(opts.stateDir ?? env.VAULTMESH_STATE_DIR ?? './state', 'admin.token');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    throw new VaultMeshError('NO_TOKEN', `no operator token: set VAULTMESH_TOKEN or run where ${file} is readable (--state-dir)`);
  }
}

/**
 * Cloudflare Access service-token headers for a CLI outside the Access perimeter: the client id from
 * VAULTMESH_CF_ACCESS_CLIENT_ID, the secret from VAULTMESH_CF_ACCESS_CLIENT_SECRET or, better, a 0600 file named by
 * VAULTMESH_CF_ACCESS_CLIENT_SECRET_FILE (the same names the agent uses). Access checks them at the edge; the
 * center still needs the operator token.
 */
export function resolveAccessHeaders(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const id = env.VAULTMESH_CF_ACCESS_CLIENT_ID;
  const file = env.VAULTMESH_CF_ACCESS_CLIENT_SECRET_FILE;
  let secret = env.VAULTMESH_CF_ACCESS_CLIENT_SECRET;
  if (file) {
    try {
      assertPrivateFile(file);
      secret = readFileSync(file, 'utf8').trim();
    } catch (err) {
      if (err instanceof VaultMeshError) throw new VaultMeshError('USAGE', `VAULTMESH_CF_ACCESS_CLIENT_SECRET_FILE: ${err.message}`);
      throw new VaultMeshError('USAGE', `VAULTMESH_CF_ACCESS_CLIENT_SECRET_FILE: cannot read ${file}: ${(err as Error).message}`);
    }
  }
  if (!id && !secret) return {};
  if (!id || !secret) throw new VaultMeshError('USAGE', 'an Access service token needs both VAULTMESH_CF_ACCESS_CLIENT_ID and a secret (VAULTMESH_CF_ACCESS_CLIENT_SECRET or _FILE)');
  return { 'cf-access-client-id': id, 'cf-access-client-secret': secret };
}

export function createApiClient(opts: ApiOptions, env: NodeJS.ProcessEnv = process.env): ApiClient {
  const baseUrl = (opts.ccUrl ?? env.VAULTMESH_CC_URL ?? 'http://127.0.0.1:8088').replace(/\/+$/, '');
  if (!CC_URL.safeParse(baseUrl).success) throw new VaultMeshError('USAGE', `--cc-url / VAULTMESH_CC_URL must be an http:// or https:// URL, not ${JSON.stringify(baseUrl)}`);
  const token = resolveToken(opts, env);
  const access = resolveAccessHeaders(env);
  const timeoutMs = opts.timeoutMs ?? 30_000;

  const send = async <S extends z.ZodType>(method: string, path: string, shape: S, body: unknown, headers: Record<string, string>, attempts: number): Promise<z.output<S>> => {
    for (let attempt = 1; ; attempt++) {
      let res;
      try {
        res = await request(baseUrl + path, {
          method: method as 'GET',
          headers: { ...access, authorization: `Bearer ${token}`, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        });
      } catch (cause) {
        const e = cause as { code?: string; message: string };
        const timeout = e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT';
        if (attempt < attempts) {
          await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
          continue;
        }
        throw new VaultMeshError(timeout ? 'REQUEST_TIMEOUT' : 'CC_UNREACHABLE', timeout ? `${baseUrl} did not answer within ${timeoutMs / 1000} s` : describeConnectError(cause, baseUrl), { cause });
      }
      const header = (name: string) => {
        const v = res.headers[name];
        return Array.isArray(v) ? v[0] : v;
      };
      const meta = { url: baseUrl + path, ...optional('contentType', header('content-type')), ...optional('location', header('location')) };
      const { json, error } = parseApiAnswer(res.statusCode, await res.body.text(), meta);
      if (res.statusCode >= 500 && attempt < attempts) {
        await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
        continue;
      }
      if (error) throw error.code === 'NOT_FROM_CENTER' ? error : VaultMeshError.fromAnswer(res.statusCode, error.code, `${res.statusCode}: ${error.message}`);
      const checked = shape.safeParse(json);
      if (!checked.success) {
        const first = checked.error.issues[0];
        const where = first?.path.length ? `${first.path.join('.')}: ` : '';
        throw new VaultMeshError('BAD_ANSWER', `unexpected answer from ${method} ${baseUrl}${path}: ${where}${first?.message ?? 'wrong shape'} (is the center older or newer than this CLI?)`, { details: detailsFromZodIssues(checked.error.issues) });
      }
      return checked.data;
    }
  };
  const retries = opts.retries ?? 3;
  return {
    baseUrl,
    get: (path, shape) => send('GET', path, shape, undefined, {}, retries),
    // POSTs are retried only when the caller makes them idempotent (an Idempotency-Key header).
    post: (path, shape, body, headers = {}) => send('POST', path, shape, body ?? {}, headers, headers['idempotency-key'] ? retries : 1),
    del: (path, shape) => send('DELETE', path, shape, undefined, {}, retries),
  };
}

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}
