/**
 * One error type for the whole project. Every expected failure carries a stable machine-readable `code` from the
 * registry (protocol/error-codes.ts: shared by the center, the agent and the CLI) and the HTTP status the registry
 * gives that code.
 */
import { ERROR_CODES, isErrorCode, MERGED_CODES, type ErrorCode, type ErrorStatus } from './error-codes.js';

export type { ErrorCode } from './error-codes.js';

export type ErrorDetail = { path?: string; message: string; [key: string]: unknown };

export interface VaultMeshErrorOptions<C extends ErrorCode> {
  /** Optional, and if given it must be the registry's status for the code (checked by the compiler). */
  status?: NonNullable<ErrorStatus<C>>;
  details?: ErrorDetail[];
  cause?: unknown;
}

export class VaultMeshError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  /** The registry's status; for codes that are never an HTTP answer, 500 should one ever escape to HTTP. */
  readonly status: number;
  readonly details: ErrorDetail[] | undefined;

  constructor(code: C, message: string, opts: VaultMeshErrorOptions<C> = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'VaultMeshError';
    this.code = code;
    this.status = ERROR_CODES[code] ?? 500;
    this.details = opts.details;
  }

  /**
   * The error an HTTP answer of the center carries, as a client sees it: the center's code (a merged old name is
   * read as its current one; a code this client does not know, or an answer without the JSON error format, is
   * `HTTP_ERROR` with the code in the message), and the status actually received.
   */
  static fromAnswer(status: number, code: unknown, message: string, details?: ErrorDetail[]): VaultMeshError {
    const current = typeof code === 'string' ? (isErrorCode(code) ? code : MERGED_CODES[code]) : undefined;
    const err = current
      ? new VaultMeshError(current, message, details ? { details } : {})
      : new VaultMeshError('HTTP_ERROR', typeof code === 'string' ? `${code}: ${message}` : message, details ? { details } : {});
    (err as { status: number }).status = status;
    return err;
  }

  toJSON(): { error: { code: string; message: string; details?: ErrorDetail[] } } {
    return { error: { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) } };
  }
}

export function isVaultMeshError(err: unknown): err is VaultMeshError {
  return err instanceof VaultMeshError;
}

/** Turns zod issues into the `details` array of the JSON error format. */
export function detailsFromZodIssues(issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>): ErrorDetail[] {
  return issues.slice(0, 20).map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
}

/** What a client knows of an HTTP answer besides its status and body. */
export interface AnswerMeta {
  /** The URL asked, for messages. */
  url?: string;
  contentType?: string;
  location?: string;
}

/**
 * Reads an HTTP answer of the center as a client: the parsed JSON body, or for a 4xx/5xx the VaultMeshError it
 * carries (`{ error: { code, message } }`), so the agent and the CLI report the center's own code and reason.
 * Answers that cannot be the center's (a redirect, which is what Cloudflare Access sends a request without its
 * credentials; an HTML page; a body that is not JSON) are NOT_FROM_CENTER errors saying what came back.
 */
export function parseApiAnswer(status: number, text: string, meta: AnswerMeta = {}): { json: unknown; error?: VaultMeshError } {
  let json: any;
  let parsed = true;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
    parsed = false;
  }
  if (status >= 300 && status < 400) return { json: undefined, error: notFromCenter(redirectMessage(status, meta.location), status) };
  if (status < 400) {
    const type = meta.contentType?.split(';')[0]?.trim();
    if (!parsed || (text && type && !/\/(?:[\w.+-]+\+)?json$/i.test(type))) {
      return { json: undefined, error: notFromCenter(`${meta.url ?? 'the server'} answered ${status} with ${type || 'a body'} that is not the command center's JSON (is --cc-url / VAULTMESH_CC_URL the center?)`, status) };
    }
    return { json };
  }
  const err = json?.error;
  const message = typeof err?.message === 'string' ? err.message : `HTTP ${status}`;
  return { json, error: VaultMeshError.fromAnswer(status, err?.code, message) };
}

function notFromCenter(message: string, status: number): VaultMeshError {
  return VaultMeshError.fromAnswer(status, 'NOT_FROM_CENTER', message);
}

function redirectMessage(status: number, location: string | undefined): string {
  const where = location ? `${status} redirect to ${location}` : `${status} redirect`;
  let host = '';
  try {
    host = location ? new URL(location).hostname : '';
  } catch {
    // a relative or malformed Location: not Access
  }
  if (host.endsWith('.cloudflareaccess.com') || /\/cdn-cgi\/access\//.test(location ?? '')) {
    return `${where}: the request did not pass Cloudflare Access; set a service token (VAULTMESH_CF_ACCESS_CLIENT_ID and VAULTMESH_CF_ACCESS_CLIENT_SECRET)`;
  }
  return `${where}: not an answer of the command center (is --cc-url / VAULTMESH_CC_URL right, with the right scheme?)`;
}

/**
 * One line for a failed connection to the center, for the CLI and the agent: OpenSSL's own text ("ssl3_get_record:
 * wrong version number") says nothing to an operator who typed https:// for an http:// port.
 */
export function describeConnectError(err: unknown, baseUrl: string): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.code ?? e.cause?.code ?? '';
  const message = e.message ?? String(err);
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number/.test(message)) {
    return `${baseUrl} does not answer TLS (is it an http:// port?): use http://, or the port of the TLS endpoint`;
  }
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) return `${baseUrl}: its TLS certificate is not trusted (${code})`;
  if (code === 'ECONNREFUSED') return `cannot reach ${baseUrl}: connection refused (is the center running, and on this port?)`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `cannot reach ${baseUrl}: host not found`;
  return `cannot reach ${baseUrl}: ${message}`;
}
