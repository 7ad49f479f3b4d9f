/**
 * Center configuration: every flag has a VAULTMESH_* environment twin, the flag wins. Validated with zod so a bad
 * value stops start-up with a message naming the setting.
 */
import { z } from 'zod';
import { VaultMeshError, detailsFromZodIssues } from '../protocol/errors.js';
import { hexKeySchema } from '../protocol/hex.js';
import { scopeSchema } from '../protocol/scopes.js';
import { parseWitnessList } from './ledger/witness-push.js';

const bool = z.union([z.boolean(), z.enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off'])]).transform((v) => v === true || ['1', 'true', 'yes', 'on'].includes(String(v)));
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const scopeList = z
  .union([z.array(z.string()), z.string()])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter(Boolean))
  .pipe(z.array(scopeSchema).min(1));

export const centerConfigSchema = z.object({
  host: z.string().min(1).default('127.0.0.1'),
  port: int(0, 65535).default(8088),
  logDir: z.string().min(1).default('./logs'),
  stateDir: z.string().min(1).default('./state'),
  fsync: z.enum(['always', 'batch', 'off']).default('batch'),
  /** Where the envelope log lives: JSONL journals in the log dir, or a PostgreSQL database (docs/SCALING.md). */
  store: z.enum(['jsonl', 'postgres']).default('jsonl'),
  /** `--store postgres`: the database, as a postgres:// URL, or a 0600 file holding it (keeps the password out of ps). */
  databaseUrl: z.string().regex(/^postgres(ql)?:\/\/\S+$/, 'must be a postgres:// or postgresql:// URL').optional(),
  databaseUrlFile: z.string().min(1).optional(),
  /** Accepted for compatibility and without effect: every center on a PostgreSQL database is a replica that writes. */
  standby: bool.default(false),
  /** `--store postgres`: a follower tries the leader lock this often, so it leads at most this long after the leader is gone. */
  leaderTakeoverSecs: int(1, 3600).default(5),
  repair: bool.default(false),
  /** Journals exist but the state dir has no key: make a new one anyway (center-key.ts); otherwise start-up refuses. */
  newCenterKey: bool.default(false),
  autoApprove: bool.default(false),
  heartbeatSecs: int(1, 86_400).default(30),
  maxBodyBytes: int(1024, 16 * 1024 * 1024).default(256 * 1024),
  maxSkewSecs: int(1, 3600).default(300),
  /** After an agent rotates its key, requests signed by the old key are still accepted this long (in-flight requests). */
  nodeKeyOverlapSecs: int(0, 30 * 86_400).default(600),
  /** Threads that verify agent request signatures (verify-pool.ts): `auto` = min(2, cores − 1); 0 = inline on the main thread. */
  verifyWorkers: z.union([z.literal('auto'), int(0, 64)]).default('auto'),
  /**
   * While the main thread's event loop is busy less than this share of the time (percent), a check that would wake
   * an idle worker runs inline instead (verify-pool.ts, `quietInline`); 0 = always hand over.
   */
  verifyInlineBelow: int(0, 100).default(50),
  /** Added to the signature workers' niceness (verify-pool.ts, `nice`): they yield the CPU to the main thread and I/O first. */
  verifyWorkerNice: int(0, 19).default(10),
  sseRetain: int(16, 1_000_000).default(2048),
  sseMaxQueue: int(16, 1_000_000).default(1024),
  historySize: int(2, 10_000).default(120),
  /** Rotate heartbeats.jsonl into a closed segment at this size (0 = never). */
  heartbeatSegmentBytes: int(0, 2 ** 40).default(256 * 1024 * 1024),
  /** Delete closed heartbeat segments older than this (0 = keep forever). Never applies to scans, commands, events. */
  heartbeatRetentionDays: int(0, 36_500).default(30),
  /** Minimum seconds between two signed tree heads (each head rewrites PROOFCHAIN.json). */
  ledgerHeadSecs: int(1, 86_400).default(10),
  /** Previous center public keys (comma-separated hex) whose signature on the ledgers' last head is accepted at start-up (key rotation). */
  previousKeys: z
    .string()
    .default('')
    .transform((s) => s.split(',').map((k) => k.trim().toLowerCase()).filter(Boolean))
    .pipe(z.array(hexKeySchema).max(16)),
  /** After `vaultmesh keys rotate`, how long agents still accept the old center key and may still take the statement (default 7 days). */
  centerKeyOverlapSecs: int(1, 366 * 86_400).default(7 * 86_400),
  /** Origin of the ledgers' C2SP checkpoints (`<origin>/scans`, `<origin>/commands`); default `<hostname>/vaultmesh`. */
  ledgerOrigin: z
    .string()
    .max(200)
    .regex(/^(?![a-zA-Z]+:\/\/)[^\s+\p{Cc}]*[^\s+\p{Cc}/]$/u, 'must be a schema-less name such as cc.example.com/vaultmesh (no spaces, no "+", no trailing "/")')
    .optional(),
  /** Serve checkpoints and hash tiles (/ledger/<log>/…) without authentication; entry bundles still need ledger:read. */
  ledgerPublic: bool.default(false),
  /** Agent (witness) cosignatures appended to a served checkpoint; 0 serves it bare. */
  ledgerCosignatures: int(0, 100).default(8),
  /** External tlog-witness witnesses: comma-separated `<url> <verifier key>` (witness-push.ts); empty = none. */
  ledgerWitnesses: z
    .string()
    .max(16_384)
    .default('')
    .superRefine((v, ctx) => {
      try {
        parseWitnessList(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    }),
  /** State snapshots (command-center/snapshot/): after this many committed entries (0: not by count). */
  snapshotEntries: int(0, 100_000_000).default(250_000),
  /** ... and at most this long apart while entries are committed (0: not by time). Always on a clean shutdown. */
  snapshotSecs: int(0, 86_400).default(600),
  /** Neither take nor use state snapshots: every start replays the whole log. */
  snapshotOff: bool.default(false),
  /** Most recent envelopes kept in memory per journal for GET /api/events. */
  eventsWindow: int(1, 1_000_000).default(500),
  /** Attention model: stale after N heartbeat intervals, disk/memory thresholds (%), sweep period, fleet agent version. */
  staleAttnAfter: z.coerce.number().positive().max(1000).default(2),
  staleCritAfter: z.coerce.number().positive().max(1000).default(5),
  diskAttnPct: z.coerce.number().min(1).max(100).default(85),
  diskCritPct: z.coerce.number().min(1).max(100).default(95),
  memAttnPct: z.coerce.number().min(1).max(100).default(90),
  memCritPct: z.coerce.number().min(1).max(100).default(98),
  attentionCheckSecs: int(1, 3600).default(10),
  expectedAgentVersion: z.string().min(1).max(64).optional(),
  /** Comma-separated http(s) URLs notified on attention transitions and incidents; empty disables webhooks. */
  webhookUrls: z
    .string()
    .default('')
    .transform((s) => s.split(',').map((u) => u.trim()).filter(Boolean))
    .pipe(z.array(z.url({ protocol: /^https?$/ })).max(16)),
  /** HMAC-SHA256 key for webhook signatures; default: generated once in the state dir (webhook.secret, 0600). */
  webhookSecret: z.string().min(16).max(256).optional(),
  /** Command policy file (JSON); unset = the shipped systemd/policy.json. */
  policy: z.string().min(1).optional(),
  /** Longest hold of an agent's `GET /api/agent/commands` long-poll. */
  commandPollSecs: int(0, 300).default(25),
  /** Hand a delivered command out again after this long without a receipt. */
  commandRedeliverSecs: int(1, 3600).default(30),
  /** Orchestrator schedule file (JSON); unset = the shipped systemd/schedule.json. */
  schedule: z.string().min(1).optional(),
  /** How often the orchestrator looks for due scheduled commands; 0 disables it. */
  orchestratorTickSecs: int(0, 3600).default(30),
  /** Cloudflare Access (cf-access.ts): team domain and application AUD tag; both set = Access required. */
  cfAccessTeamDomain: z.string().min(1).max(253).optional(),
  cfAccessAud: z.string().min(1).max(256).optional(),
  /** JWKS URL override (tests, private mirrors); default https://<team>.cloudflareaccess.com/cdn-cgi/access/certs. */
  cfAccessCertsUrl: z.url().optional(),
  /** Also accept requests without an Access assertion that carry an Authorization header (Bearer tokens). */
  cfAccessAllowBearer: bool.default(false),
  /** Scopes of Access users (emails) and of Access service tokens. */
  cfAccessScopes: scopeList.default(['admin']),
  cfAccessServiceScopes: scopeList.default(['events:read', 'events:write', 'nodes:read']),
  /** Abuse limits (rate-limit.ts): token buckets per identity, per client IP, per agent node. 0 disables all. */
  rateLimit: bool.default(true),
  rateLimitPerSec: z.coerce.number().positive().max(100_000).default(20),
  rateLimitBurst: int(1, 1_000_000).default(300),
  rateLimitIpPerSec: z.coerce.number().positive().max(100_000).default(50),
  rateLimitIpBurst: int(1, 1_000_000).default(500),
  /** Per node: a heartbeat every 30 s plus a long-poll every ~25 s is ~0.1/s; the burst lets an outbox flush. */
  rateLimitNodePerSec: z.coerce.number().positive().max(100_000).default(10),
  rateLimitNodeBurst: int(1, 1_000_000).default(2000),
  /** Per client address on enrollment: a fleet enrolls through one tunnel only when trustProxy tells addresses apart. */
  rateLimitEnrollPerSec: z.coerce.number().positive().max(100_000).default(1),
  rateLimitEnrollBurst: int(1, 1_000_000).default(50),
  /** Believe CF-Connecting-IP (only behind cloudflared / a proxy that sets it). */
  trustProxy: bool.default(false),
  /** Concurrent SSE streams per identity. */
  sseMaxPerIdentity: int(1, 10_000).default(16),
  /** Non-streaming requests answer 503 REQUEST_TIMEOUT after this long. */
  requestTimeoutSecs: int(1, 3600).default(30),
  /** Do not offer the local admin socket (<state-dir>/admin.sock, admin-socket.ts). */
  adminSocketOff: bool.default(false),
  /** A stream (/events, /console/stream) ends after this long, so its client reconnects and authenticates again. */
  streamMaxSecs: int(60, 7 * 86_400).default(12 * 3600),
  /** Server limits (server-limits.ts): the request headers must arrive within this long, or the socket is closed. */
  headersTimeoutSecs: int(1, 300).default(10),
  /** The whole request, headers and body, must arrive within this long (not the response: streams stay open). */
  requestReceiveTimeoutSecs: int(1, 3600).default(60),
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutSecs: int(1, 600).default(5),
  /** Open connections in total; beyond it new ones are closed at once. */
  maxConnections: int(1, 1_000_000).default(20_000),
  /** Open connections per client address (loopback exempt: a local tunnel carries everyone); 0 = no cap. */
  maxConnectionsPerIp: int(0, 1_000_000).default(64),
  /** Set when --host came from the operator, so a non-loopback bind is a decision, not an accident. */
  hostExplicit: z.boolean().default(false),
});

export type CenterConfig = z.infer<typeof centerConfigSchema>;

const ENV: Record<keyof Omit<CenterConfig, 'hostExplicit'>, string> = {
  host: 'VAULTMESH_HOST',
  port: 'VAULTMESH_PORT',
  logDir: 'VAULTMESH_LOG_DIR',
  stateDir: 'VAULTMESH_STATE_DIR',
  fsync: 'VAULTMESH_FSYNC',
  store: 'VAULTMESH_STORE',
  databaseUrl: 'VAULTMESH_DATABASE_URL',
  databaseUrlFile: 'VAULTMESH_DATABASE_URL_FILE',
  standby: 'VAULTMESH_STANDBY',
  leaderTakeoverSecs: 'VAULTMESH_LEADER_TAKEOVER_SECS',
  repair: 'VAULTMESH_REPAIR',
  newCenterKey: 'VAULTMESH_NEW_CENTER_KEY',
  autoApprove: 'VAULTMESH_AUTO_APPROVE',
  heartbeatSecs: 'VAULTMESH_HEARTBEAT_SECS',
  maxBodyBytes: 'VAULTMESH_MAX_BODY_BYTES',
  maxSkewSecs: 'VAULTMESH_MAX_SKEW_SECS',
  nodeKeyOverlapSecs: 'VAULTMESH_NODE_KEY_OVERLAP_SECS',
  verifyWorkers: 'VAULTMESH_VERIFY_WORKERS',
  verifyInlineBelow: 'VAULTMESH_VERIFY_INLINE_BELOW',
  verifyWorkerNice: 'VAULTMESH_VERIFY_WORKER_NICE',
  sseRetain: 'VAULTMESH_SSE_RETAIN',
  sseMaxQueue: 'VAULTMESH_SSE_MAX_QUEUE',
  historySize: 'VAULTMESH_HISTORY_SIZE',
  heartbeatSegmentBytes: 'VAULTMESH_HEARTBEAT_SEGMENT_BYTES',
  heartbeatRetentionDays: 'VAULTMESH_HEARTBEAT_RETENTION_DAYS',
  ledgerHeadSecs: 'VAULTMESH_LEDGER_HEAD_SECS',
  previousKeys: 'VAULTMESH_PREVIOUS_KEYS',
  centerKeyOverlapSecs: 'VAULTMESH_CENTER_KEY_OVERLAP_SECS',
  ledgerOrigin: 'VAULTMESH_LEDGER_ORIGIN',
  ledgerPublic: 'VAULTMESH_LEDGER_PUBLIC',
  ledgerCosignatures: 'VAULTMESH_LEDGER_COSIGNATURES',
  ledgerWitnesses: 'VAULTMESH_LEDGER_WITNESSES',
  eventsWindow: 'VAULTMESH_EVENTS_WINDOW',
  snapshotEntries: 'VAULTMESH_SNAPSHOT_ENTRIES',
  snapshotSecs: 'VAULTMESH_SNAPSHOT_SECS',
  snapshotOff: 'VAULTMESH_SNAPSHOT_OFF',
  staleAttnAfter: 'VAULTMESH_STALE_ATTN_AFTER',
  staleCritAfter: 'VAULTMESH_STALE_CRIT_AFTER',
  diskAttnPct: 'VAULTMESH_DISK_ATTN_PCT',
  diskCritPct: 'VAULTMESH_DISK_CRIT_PCT',
  memAttnPct: 'VAULTMESH_MEM_ATTN_PCT',
  memCritPct: 'VAULTMESH_MEM_CRIT_PCT',
  attentionCheckSecs: 'VAULTMESH_ATTENTION_CHECK_SECS',
  expectedAgentVersion: 'VAULTMESH_EXPECTED_AGENT_VERSION',
  webhookUrls: 'VAULTMESH_WEBHOOK_URLS',
  webhookSecret: 'VAULTMESH_WEBHOOK_SECRET',
  policy: 'VAULTMESH_POLICY',
  commandPollSecs: 'VAULTMESH_COMMAND_POLL_SECS',
  commandRedeliverSecs: 'VAULTMESH_COMMAND_REDELIVER_SECS',
  schedule: 'VAULTMESH_SCHEDULE',
  orchestratorTickSecs: 'VAULTMESH_ORCHESTRATOR_TICK_SECS',
  cfAccessTeamDomain: 'VAULTMESH_CF_ACCESS_TEAM_DOMAIN',
  cfAccessAud: 'VAULTMESH_CF_ACCESS_AUD',
  cfAccessCertsUrl: 'VAULTMESH_CF_ACCESS_CERTS_URL',
  cfAccessAllowBearer: 'VAULTMESH_CF_ACCESS_ALLOW_BEARER',
  cfAccessScopes: 'VAULTMESH_CF_ACCESS_SCOPES',
  cfAccessServiceScopes: 'VAULTMESH_CF_ACCESS_SERVICE_SCOPES',
  rateLimit: 'VAULTMESH_RATE_LIMIT',
  rateLimitPerSec: 'VAULTMESH_RATE_LIMIT_PER_SEC',
  rateLimitBurst: 'VAULTMESH_RATE_LIMIT_BURST',
  rateLimitIpPerSec: 'VAULTMESH_RATE_LIMIT_IP_PER_SEC',
  rateLimitIpBurst: 'VAULTMESH_RATE_LIMIT_IP_BURST',
  rateLimitNodePerSec: 'VAULTMESH_RATE_LIMIT_NODE_PER_SEC',
  rateLimitNodeBurst: 'VAULTMESH_RATE_LIMIT_NODE_BURST',
  rateLimitEnrollPerSec: 'VAULTMESH_RATE_LIMIT_ENROLL_PER_SEC',
  rateLimitEnrollBurst: 'VAULTMESH_RATE_LIMIT_ENROLL_BURST',
  trustProxy: 'VAULTMESH_TRUST_PROXY',
  sseMaxPerIdentity: 'VAULTMESH_SSE_MAX_PER_IDENTITY',
  requestTimeoutSecs: 'VAULTMESH_REQUEST_TIMEOUT_SECS',
  adminSocketOff: 'VAULTMESH_ADMIN_SOCKET_OFF',
  streamMaxSecs: 'VAULTMESH_STREAM_MAX_SECS',
  headersTimeoutSecs: 'VAULTMESH_HEADERS_TIMEOUT_SECS',
  requestReceiveTimeoutSecs: 'VAULTMESH_REQUEST_RECEIVE_TIMEOUT_SECS',
  keepAliveTimeoutSecs: 'VAULTMESH_KEEP_ALIVE_TIMEOUT_SECS',
  maxConnections: 'VAULTMESH_MAX_CONNECTIONS',
  maxConnectionsPerIp: 'VAULTMESH_MAX_CONNECTIONS_PER_IP',
};

export function centerEnvNames(): Readonly<Record<string, string>> {
  return ENV;
}

/** Merges flags over environment over defaults. */
export function resolveCenterConfig(flags: Partial<Record<keyof CenterConfig, unknown>>, env: NodeJS.ProcessEnv = process.env): CenterConfig {
  const raw: Record<string, unknown> = {};
  for (const [key, name] of Object.entries(ENV)) {
    const flag = flags[key as keyof CenterConfig];
    if (flag !== undefined) raw[key] = flag;
    else if (env[name] !== undefined && env[name] !== '') raw[key] = env[name];
  }
  raw.hostExplicit = flags.host !== undefined || (env.VAULTMESH_HOST ?? '') !== '';
  const parsed = centerConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    const key = String(first.path[0]);
    throw new VaultMeshError('CONFIG_INVALID', `invalid setting --${kebab(key)} / ${ENV[key as keyof typeof ENV] ?? key}: ${first.message}`, {
      details: detailsFromZodIssues(parsed.error.issues),
    });
  }
  const config = parsed.data;
  const urls = [config.databaseUrl, config.databaseUrlFile].filter((u) => u !== undefined).length;
  if (config.store === 'postgres' && urls !== 1) {
    throw new VaultMeshError('CONFIG_INVALID', `--store postgres needs exactly one of --database-url / VAULTMESH_DATABASE_URL and --database-url-file / VAULTMESH_DATABASE_URL_FILE (${urls} given)`);
  }
  return config;
}

export function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`);
}
