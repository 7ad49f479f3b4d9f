/**
 * The agent's HTTP client for the center: every request signed with the node key (protocol/request-signing.ts),
 * JSON errors turned back into VaultMeshError with the center's code, and the center's clock read from `Date`.
 */
import { request } from 'undici';
import { signRequest } from '../protocol/request-signing.js';
import { VaultMeshError, describeConnectError, parseApiAnswer } from '../protocol/errors.js';
import type { KeyPair } from '../protocol/keys.js';

export interface CcClient {
  post<T>(path: string, body: unknown): Promise<T>;
  get<T>(path: string, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<T>;
  /** The center's clock as of the last response (for clock-skew checks). */
  readonly lastServerDate: Date | undefined;
}

export function createCcClient(opts: {
  baseUrl: string;
  nodeId: string;
  key: KeyPair;
  timeoutMs?: number;
  extraHeaders?: Record<string, string>;
  now?: () => Date;
}): CcClient {
  let lastServerDate: Date | undefined;
  const send = async <T>(method: 'GET' | 'POST', path: string, body: string, timeoutMs = opts.timeoutMs ?? 15_000, signal?: AbortSignal): Promise<T> => {
    const headers: Record<string, string> = {
      ...opts.extraHeaders,
      ...signRequest({ method, path, nodeId: opts.nodeId, body }, opts.key, opts.now ? { now: opts.now } : {}),
      accept: 'application/json',
    };
    if (method === 'POST') headers['content-type'] = 'application/json';
    let res;
    try {
      res = await request(opts.baseUrl + path, {
        method,
        headers,
        ...(method === 'POST' ? { body } : {}),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        ...(signal ? { signal } : {}),
      });
    } catch (cause) {
      throw new VaultMeshError('CC_UNREACHABLE', `command center: ${describeConnectError(cause, opts.baseUrl)}`, { cause });
    }
    const date = res.headers.date;
    if (typeof date === 'string' && Number.isFinite(Date.parse(date))) lastServerDate = new Date(date);
    const header = (name: string) => {
      const v = res.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const contentType = header('content-type');
    const location = header('location');
    const { json, error } = parseApiAnswer(res.statusCode, await res.body.text(), {
      url: opts.baseUrl + path,
      ...(contentType !== undefined ? { contentType } : {}),
      ...(location !== undefined ? { location } : {}),
    });
    if (error) throw error;
    return json as T;
  };
  return {
    post: (path, body) => send('POST', path, JSON.stringify(body)),
    get: (path, o) => send('GET', path, '', o?.timeoutMs, o?.signal),
    get lastServerDate() {
      return lastServerDate;
    },
  };
}
