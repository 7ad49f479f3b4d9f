/**
 * One error type for the whole project. Every expected failure carries a stable machine-readable `code`
 * (shared by the center, the agent and the CLI) and, where it reaches HTTP, the status to answer with.
 */
export type ErrorDetail = { path?: string; message: string; [key: string]: unknown };

export class VaultMeshError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: ErrorDetail[] | undefined;

  constructor(code: string, message: string, opts: { status?: number; details?: ErrorDetail[]; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'VaultMeshError';
    this.code = code;
    this.status = opts.status ?? 400;
    this.details = opts.details;
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

/**
 * Reads an HTTP answer of the center as a client: the parsed JSON body, or for a 4xx/5xx the VaultMeshError it
 * carries (`{ error: { code, message } }`), so the agent and the CLI report the center's own code and reason.
 */
export function parseApiAnswer(status: number, text: string): { json: unknown; error?: VaultMeshError } {
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (status < 400) return { json };
  const err = json?.error;
  const code = typeof err?.code === 'string' ? err.code : `HTTP_${status}`;
  const message = typeof err?.message === 'string' ? err.message : `HTTP ${status}`;
  return { json, error: new VaultMeshError(code, message, { status }) };
}
