/**
 * Turns any thrown value into the JSON error format of docs/API.md (`{ error: { code, message, details? } }`, codes
 * and statuses from protocol/error-codes.ts); only a fault of the server itself is a 5xx.
 */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ZodError } from 'zod';
import { VaultMeshError, detailsFromZodIssues, type ErrorCode } from '../../protocol/errors.js';
import { illFormedStringPathOfJson } from './well-formed.js';

export function validationError(err: ZodError, what = 'request body'): VaultMeshError {
  return new VaultMeshError('VALIDATION_ERROR', `invalid ${what}`, { status: 400, details: detailsFromZodIssues(err.issues) });
}

export function renderError(err: unknown, c: Context): Response {
  if (err instanceof VaultMeshError) {
    if (err.status >= 500) console.error(`${err.code}: ${err.message}`);
    return c.json(err.toJSON(), err.status as ContentfulStatusCode);
  }
  if (err instanceof HTTPException) {
    // Hono's own exceptions (from its middleware) get the code of their status, and that code's status.
    const code: ErrorCode = HTTP_EXCEPTION_CODES[err.status] ?? (err.status >= 500 ? 'INTERNAL' : 'BAD_REQUEST');
    return renderError(new VaultMeshError(code, err.message || code.toLowerCase().replace(/_/g, ' ')), c);
  }
  console.error('unhandled error', err);
  return c.json(new VaultMeshError('INTERNAL', 'internal error').toJSON(), 500);
}

const HTTP_EXCEPTION_CODES: Partial<Record<number, ErrorCode>> = { 401: 'UNAUTHORIZED', 403: 'FORBIDDEN', 404: 'NOT_FOUND', 408: 'REQUEST_TIMEOUT', 413: 'PAYLOAD_TOO_LARGE', 415: 'UNSUPPORTED_MEDIA_TYPE', 429: 'RATE_LIMITED' };

export async function readJson(c: Context): Promise<unknown> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/(?:[\w.+-]+\+)?json\b/i.test(type)) {
    throw new VaultMeshError('UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json', { status: 415 });
  }
  const raw = Buffer.from(await c.req.arrayBuffer());
  return parseJsonBytes(raw);
}

// One decoder for every request: without `stream` a decode keeps no state, and making one per request showed in
// the ingest profile.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

export function parseJsonBytes(raw: Buffer): unknown {
  let s: string;
  try {
    s = utf8.decode(raw);
  } catch {
    throw new VaultMeshError('MALFORMED_JSON', 'request body is not valid UTF-8', { status: 400 });
  }
  let value: unknown;
  try {
    value = JSON.parse(s);
  } catch (err) {
    throw new VaultMeshError('MALFORMED_JSON', `request body is not valid JSON: ${(err as Error).message}`, { status: 400 });
  }
  const path = illFormedStringPathOfJson(s, value);
  if (path !== undefined) {
    const message = 'a string is ill-formed UTF-16 (a lone surrogate escape such as \\ud800): it has no UTF-8 form';
    throw new VaultMeshError('VALIDATION_ERROR', `invalid request body: ${message}`, { status: 400, details: [{ path, message }] });
  }
  return value;
}

/** The urlencoded or multipart form of a request. A body that does not parse is the client's fault: 400, not 500. */
export async function readForm(c: Context): Promise<Record<string, string | File | (string | File)[]>> {
  try {
    return await c.req.parseBody();
  } catch (err) {
    throw new VaultMeshError('VALIDATION_ERROR', 'request body is not a valid form (urlencoded or multipart)', { status: 400, cause: err });
  }
}
