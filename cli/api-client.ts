/**
 * The CLI's client for the operator API (undici): Bearer token from VAULTMESH_TOKEN or the local state dir,
 * clear one-line errors (unreachable, 401/403 with the center's reason, timeout), retries for idempotent calls.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { VaultMeshError, parseApiAnswer } from '../protocol/errors.js';

export interface ApiOptions {
  ccUrl?: string;
  token?: string;
  stateDir?: string;
  timeoutMs?: number;
  retries?: number;
}

export interface ApiClient {
  get<T>(path: string): Promise<T>;
  post<T>(path: string, body?: unknown, headers?: Record<string, string>): Promise<T>;
  del<T>(path: string): Promise<T>;
  readonly baseUrl: string;
}

export function resolveToken(opts: ApiOptions, env: NodeJS.ProcessEnv = process.env): string {
  if (opts.token) return opts.token;
  if (env.VAULTMESH_TOKEN) return env.VAULTMESH_TOKEN;
  const file = join(opts.stateDir ?? env.VAULTMESH_STATE_DIR ?? './state', 'admin.token');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    throw new VaultMeshError('NO_TOKEN', `no operator token: set VAULTMESH_TOKEN or run where ${file} is readable (--state-dir)`, { status: 2 });
  }
}

export function createApiClient(opts: ApiOptions, env: NodeJS.ProcessEnv = process.env): ApiClient {
  const baseUrl = (opts.ccUrl ?? env.VAULTMESH_CC_URL ?? 'http://127.0.0.1:8088').replace(/\/+$/, '');
  const token = resolveToken(opts, env);
  const timeoutMs = opts.timeoutMs ?? 30_000;

  const send = async <T>(method: string, path: string, body: unknown, headers: Record<string, string>, attempts: number): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      let res;
      try {
        res = await request(baseUrl + path, {
          method: method as 'GET',
          headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
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
        throw new VaultMeshError(timeout ? 'TIMEOUT' : 'UNREACHABLE', timeout ? `${baseUrl} did not answer within ${timeoutMs / 1000} s` : `cannot reach ${baseUrl}: ${e.message}`, { cause });
      }
      const { json, error } = parseApiAnswer(res.statusCode, await res.body.text());
      if (res.statusCode >= 500 && attempt < attempts) {
        await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
        continue;
      }
      if (error) throw new VaultMeshError(error.code, `${res.statusCode}: ${error.message}`, { status: res.statusCode });
      return json as T;
    }
  };
  const retries = opts.retries ?? 3;
  return {
    baseUrl,
    get: (path) => send('GET', path, undefined, {}, retries),
    // POSTs are retried only when the caller makes them idempotent (an Idempotency-Key header).
    post: (path, body, headers = {}) => send('POST', path, body ?? {}, headers, headers['idempotency-key'] ? retries : 1),
    del: (path) => send('DELETE', path, undefined, {}, retries),
  };
}
