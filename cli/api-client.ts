/**
 * The CLI's client for the operator API (node:http, cli/http-request.ts): over TCP to a URL with a Bearer token from VAULTMESH_TOKEN or the
 * local state dir, or over the center's admin socket (the local admin, no token needed; resolveTransport says
 * which); clear one-line errors (unreachable, 401/403 with the center's reason, timeout), retries for idempotent
 * calls.
 */
import { accessSync, constants as fsConstants, lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { httpSend } from './http-request.js';
import { z } from 'zod';
import { VaultMeshError, describeConnectError, detailsFromZodIssues, parseApiAnswer } from '../protocol/errors.js';
import { assertPrivateFile } from '../lib/private-file.js';

export interface ApiOptions {
  ccUrl?: string;
  token?: string;
  stateDir?: string;
  /** The center's admin socket (--admin-socket); default: <state-dir>/admin.sock when it exists and no URL is given. */
  adminSocket?: string;
  /** Never use the admin socket (--admin-socket-off). */
  adminSocketOff?: boolean;
  timeoutMs?: number;
  retries?: number;
}

/** Every call names the shape it expects (cli/answers.ts); an answer of another shape is a BAD_ANSWER error. */
export interface ApiClient {
  get<S extends z.ZodType>(path: string, shape: S): Promise<z.output<S>>;
  post<S extends z.ZodType>(path: string, shape: S, body?: unknown, headers?: Record<string, string>): Promise<z.output<S>>;
  del<S extends z.ZodType>(path: string, shape: S): Promise<z.output<S>>;
  readonly baseUrl: string;
  /** What the CLI talks to, for messages: the URL, or `admin socket <path>`. */
  readonly target: string;
}

const CC_URL = z.url({ protocol: /^https?$/ });
const DEFAULT_CC_URL = 'http://127.0.0.1:8088';
const ADMIN_SOCKET_FILE = 'admin.sock';
const usage = (message: string) => new VaultMeshError('USAGE', message);

/** How the CLI reaches the center. */
export type Transport = { kind: 'tcp'; baseUrl: string } | { kind: 'socket'; path: string };

const isOn = (v: string | undefined) => v !== undefined && ['1', 'true', 'yes', 'on'].includes(v.trim().toLowerCase());

/** A Unix socket this process may connect to (connecting needs write permission on it). */
export function isUsableSocket(path: string): boolean {
  try {
    if (!lstatSync(path).isSocket()) return false;
    accessSync(path, fsConstants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The admin socket when it is asked for, or when it exists under the state dir and no URL was given; otherwise the
 * URL. Flags come before the environment: --admin-socket, --cc-url, VAULTMESH_ADMIN_SOCKET, VAULTMESH_CC_URL, then
 * <state-dir>/admin.sock, then http://127.0.0.1:8088. --admin-socket-off / VAULTMESH_ADMIN_SOCKET_OFF skips the
 * socket unless --admin-socket names one.
 */
export function resolveTransport(opts: ApiOptions, env: NodeJS.ProcessEnv = process.env, usable: (path: string) => boolean = isUsableSocket): Transport {
  if (opts.adminSocket !== undefined && opts.ccUrl !== undefined) throw usage('give --cc-url or --admin-socket, not both');
  if (opts.adminSocket !== undefined && opts.adminSocketOff) throw usage('give --admin-socket or --admin-socket-off, not both');
  if (opts.adminSocket !== undefined) return { kind: 'socket', path: opts.adminSocket };
  if (opts.ccUrl !== undefined) return { kind: 'tcp', baseUrl: opts.ccUrl };
  const off = opts.adminSocketOff === true || isOn(env.VAULTMESH_ADMIN_SOCKET_OFF);
  if (!off && env.VAULTMESH_ADMIN_SOCKET) return { kind: 'socket', path: env.VAULTMESH_ADMIN_SOCKET };
  if (env.VAULTMESH_CC_URL) return { kind: 'tcp', baseUrl: env.VAULTMESH_CC_URL };
  const local = join(stateDirOf(opts, env), ADMIN_SOCKET_FILE);
  if (!off && usable(local)) return { kind: 'socket', path: local };
  return { kind: 'tcp', baseUrl: DEFAULT_CC_URL };
}

function stateDirOf(opts: ApiOptions, env: NodeJS.ProcessEnv): string {
  return opts.stateDir ?? (env.VAULTMESH_STATE_DIR || './state');
}

export { ADMIN_SOCKET_OFF_OPTION, ADMIN_SOCKET_OPTION } from './api-flags.js';

/** The API options of a command's flags (cac camel-cases them). */
export function apiOptionsFromFlags(f: { ccUrl?: unknown; stateDir?: unknown; token?: unknown; adminSocket?: unknown; adminSocketOff?: unknown }): ApiOptions {
  const str = (name: string, v: unknown): string | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'string' && typeof v !== 'number') throw usage(`--${name} needs a value`);
    return String(v);
  };
  const out: ApiOptions = {};
  const ccUrl = str('cc-url', f.ccUrl);
  const stateDir = str('state-dir', f.stateDir);
  const token = str('token', f.token);
  const adminSocket = str('admin-socket', f.adminSocket);
  if (ccUrl !== undefined) out.ccUrl = ccUrl;
  if (stateDir !== undefined) out.stateDir = stateDir;
  if (token !== undefined) out.token = token;
  if (adminSocket !== undefined) out.adminSocket = adminSocket;
  if (f.adminSocketOff === true) out.adminSocketOff = true;
  return out;
}

/** Why the admin socket could not be reached, in one line. */
function describeSocketError(err: unknown, path: string): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code ?? '';
  if (code === 'ENOENT') return `no admin socket at ${path} (is the center running with this --state-dir?)`;
  if (code === 'ECONNREFUSED') return `nothing answers on the admin socket ${path} (the center is not running; the socket is stale)`;
  if (code === 'EACCES' || code === 'EPERM') return `permission denied on the admin socket ${path}: run as the center's user`;
  return `cannot reach the admin socket ${path}: ${e.message ?? String(err)}`;
}

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
  const transport = resolveTransport(opts, env);
  let baseUrl: string;
  let target: string;
  let socketPath: string | undefined;
  let token: string | undefined;
  let access: Record<string, string> = {};
  if (transport.kind === 'socket') {
    if (!transport.path) throw usage('--admin-socket / VAULTMESH_ADMIN_SOCKET needs a path');
    // The socket's identity is the local admin; a token is sent only when one is given explicitly (it then wins).
    baseUrl = 'http://localhost';
    target = `admin socket ${transport.path}`;
    socketPath = transport.path;
    token = opts.token ?? (env.VAULTMESH_TOKEN || undefined);
  } else {
    baseUrl = transport.baseUrl.replace(/\/+$/, '');
    if (!CC_URL.safeParse(baseUrl).success) throw usage(`--cc-url / VAULTMESH_CC_URL must be an http:// or https:// URL, not ${JSON.stringify(baseUrl)}`);
    target = baseUrl;
    token = resolveToken(opts, env);
    access = resolveAccessHeaders(env);
  }
  const timeoutMs = opts.timeoutMs ?? 30_000;

  const send = async <S extends z.ZodType>(method: string, path: string, shape: S, body: unknown, headers: Record<string, string>, attempts: number): Promise<z.output<S>> => {
    for (let attempt = 1; ; attempt++) {
      let res;
      try {
        res = await httpSend(baseUrl + path, {
          method,
          headers: { ...access, ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}), accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
          timeoutMs,
          ...(socketPath !== undefined ? { socketPath } : {}),
        });
      } catch (cause) {
        const e = cause as { code?: string; message: string };
        const timeout = e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT';
        if (attempt < attempts) {
          await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
          continue;
        }
        const unreachable = transport.kind === 'socket' ? describeSocketError(cause, transport.path) : describeConnectError(cause, baseUrl);
        throw new VaultMeshError(timeout ? 'REQUEST_TIMEOUT' : 'CC_UNREACHABLE', timeout ? `${target} did not answer within ${timeoutMs / 1000} s` : unreachable, { cause });
      }
      const header = (name: string) => {
        const v = res.headers[name];
        return Array.isArray(v) ? v[0] : v;
      };
      const meta = { url: transport.kind === 'socket' ? `${target} ${path}` : baseUrl + path, ...optional('contentType', header('content-type')), ...optional('location', header('location')) };
      const { json, error } = parseApiAnswer(res.statusCode, res.text, meta);
      if (res.statusCode >= 500 && attempt < attempts) {
        await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
        continue;
      }
      if (error) throw error.code === 'NOT_FROM_CENTER' ? error : VaultMeshError.fromAnswer(res.statusCode, error.code, `${res.statusCode}: ${error.message}`);
      const checked = shape.safeParse(json);
      if (!checked.success) {
        const first = checked.error.issues[0];
        const where = first?.path.length ? `${first.path.join('.')}: ` : '';
        throw new VaultMeshError('BAD_ANSWER', `unexpected answer from ${method} ${transport.kind === 'socket' ? `${target} ` : baseUrl}${path}: ${where}${first?.message ?? 'wrong shape'} (is the center older or newer than this CLI?)`, { details: detailsFromZodIssues(checked.error.issues) });
      }
      return checked.data;
    }
  };
  const retries = opts.retries ?? 3;
  return {
    baseUrl,
    target,
    get: (path, shape) => send('GET', path, shape, undefined, {}, retries),
    // POSTs are retried only when the caller makes them idempotent (an Idempotency-Key header).
    post: (path, shape, body, headers = {}) => send('POST', path, shape, body ?? {}, headers, headers['idempotency-key'] ? retries : 1),
    del: (path, shape) => send('DELETE', path, shape, undefined, {}, retries),
  };
}

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}
