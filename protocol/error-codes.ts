/**
 * Every error code of the project and the HTTP status the center answers it with. The center, the agent and the
 * CLI use these codes and no others, so a code means the same wherever it is printed or matched. `null`: the code
 * is never an HTTP answer (the CLI or the agent raises it locally). Each code is documented in docs/API.md
 * ("Error codes"); a test checks that the two lists are the same.
 */
export const ERROR_CODES = {
  // Bad input
  VALIDATION_ERROR: 400,
  MALFORMED_JSON: 400,
  BAD_REQUEST: 400,
  UNKNOWN_KIND: 400,
  CONFIRMATION_REQUIRED: 400,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  NOT_FOUND: 404,
  // Operator and bot identity
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  CSRF_REJECTED: 403,
  CF_ACCESS_REQUIRED: 401,
  CF_ACCESS_INVALID: 401,
  CF_ACCESS_UNAVAILABLE: 503,
  // Signed agent requests
  MISSING_SIGNATURE: 401,
  BAD_SIGNATURE: 401,
  CLOCK_SKEW: 401,
  REPLAYED_REQUEST: 401,
  UNKNOWN_NODE: 401,
  NODE_PENDING: 403,
  NODE_REJECTED: 403,
  NODE_REVOKED: 403,
  NODE_MISMATCH: 403,
  NODE_KEY_ROTATED: 401,
  KEY_ROTATION_CONFLICT: 409,
  // Enrollment and node decisions
  BAD_JOIN_TOKEN: 401,
  JOIN_TOKEN_EXPIRED: 401,
  JOIN_TOKEN_USED_UP: 401,
  JOIN_TOKEN_REVOKED: 401,
  NODE_EXISTS: 409,
  INVALID_STATE: 409,
  // Commands, events, tokens
  POLICY_DENIED: 403,
  NODE_NOT_APPROVED: 409,
  DUPLICATE_COMMAND: 409,
  UNKNOWN_COMMAND: 404,
  ID_CONFLICT: 409,
  NAME_TAKEN: 409,
  // Approval of proposed commands
  SELF_APPROVAL: 403,
  ALREADY_APPROVED: 409,
  PROPOSAL_EXPIRED: 409,
  PROPOSAL_CLOSED: 409,
  // Maintenance windows
  MAINTENANCE_NOT_FOUND: 404,
  MAINTENANCE_ENDED: 409,
  // Ledger and journals
  NOT_YET_SIGNED: 409,
  LEDGER_ENTRY_TOO_LARGE: 422,
  LEDGER_MISMATCH: 500,
  LEDGER_CORRUPT: 500,
  LEDGER_NOT_LOADED: 500,
  JOURNAL_CORRUPT: 500,
  UNREADABLE: 500,
  // Limits and availability
  RATE_LIMITED: 429,
  TOO_MANY_STREAMS: 429,
  REQUEST_TIMEOUT: 503,
  JOURNAL_UNAVAILABLE: 503,
  SHUTTING_DOWN: 503,
  CENTER_KEY_NOT_HELD: 503,
  CENTER_KEY_CHANGED: 409,
  INTERNAL: 500,
  // Raised locally by the CLI or the agent
  USAGE: null,
  NO_TOKEN: null,
  CONFIG_INVALID: null,
  CC_UNREACHABLE: null,
  HTTP_ERROR: null,
  NOT_FROM_CENTER: null,
  BAD_ANSWER: null,
  AGENT_LOCKED: null,
  CENTER_LOCKED: null,
  CENTER_KEY_MISSING: null,
  SCHEMA_TOO_NEW: null,
  NO_JOIN_TOKEN: null,
  NO_KEY: null,
  BAD_KEY_FILE: null,
  INSECURE_KEY_FILE: null,
  BAD_BUNDLE: null,
  LEDGER_CACHE_WRITE: null,
  NOT_LEADER: null,
  CENTER_KEY_ROTATION_MISSED: null,
} as const satisfies Record<string, number | null>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The HTTP status of a code (`null` for codes that are never an HTTP answer). */
export type ErrorStatus<C extends ErrorCode> = (typeof ERROR_CODES)[C];

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

/**
 * Codes that were merged into another: a client reading an answer from an older center, or a script matching an
 * old name, gets the current one.
 */
export const MERGED_CODES: Readonly<Record<string, ErrorCode>> = {
  TIMEOUT: 'REQUEST_TIMEOUT',
  UNREACHABLE: 'CC_UNREACHABLE',
  CORRUPT_LINE: 'JOURNAL_CORRUPT',
};
