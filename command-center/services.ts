/** The shared services every route can reach through Hono's typed context (`c.get('services')`). */
import type { Envelope, EnvelopeDraft } from '../protocol/envelope.js';
import type { AppendOptions, Claim } from './store/envelope-store.js';
import type { KeyPair } from '../protocol/keys.js';
import type { CenterKeyRing } from './keys/center-key-ring.js';
import type { Rotator } from './keys/rotate-center-key.js';
import type { CenterConfig } from './config.js';
import type { EventBus } from './http/event-bus.js';
import type { FleetState } from './fleet/fleet-state.js';
import type { CenterMetrics } from './http/metrics.js';
import type { Authenticators, Identity } from './auth/operator-auth.js';
import type { ReplayGuard } from './auth/replay-guard.js';
import type { VerifyPool } from './auth/verify-pool.js';
import type { Mutex } from './store/mutex.js';
import type { StatusPolicy } from './fleet/node-status.js';
import type { CommandService } from './commands/command-store.js';
import type { EventLog } from './store/event-log.js';
import type { AttentionMonitor } from './ops/attention-monitor.js';
import type { Webhooks } from './ops/webhooks.js';
import type { Ledger } from './ledger/ledger.js';
import type { CheckpointWriter } from './ledger/checkpoints.js';
import type { WitnessBook } from './ledger/witnesses.js';
import type { ApiTokenUsage } from './auth/api-tokens.js';
import type { VaultMeshError } from '../protocol/errors.js';
import type { Session } from './console/session.js';
import type { AbuseLimits } from './http/rate-limit.js';
import type { Orchestrator } from './ops/orchestrator.js';
import type { Leadership } from './leadership.js';
import type { TailLag } from './store/tail-lag.js';
import type { MaintenanceService } from './ops/maintenance-service.js';

export interface Services {
  config: CenterConfig;
  state: FleetState;
  bus: EventBus;
  metrics: CenterMetrics;
  /**
   * Journal (durable) → state → bus. Resolves once durable; a duplicate envelope id resolves `duplicate: true`.
   * `opts.claims`: one-time keys taken with the envelope (replicas on PostgreSQL); a taken one rejects ClaimTaken.
   */
  submit(draft: EnvelopeDraft, opts?: AppendOptions): Promise<{ envelope: Envelope; duplicate: boolean }>;
  /**
   * The log is shared with other replicas (`--store postgres`): one-time rules are also enforced by the store
   * (claims), and this replica's memory may lag the others' writes by up to the tail lag.
   */
  replicated: boolean;
  /** Takes one-time keys with no envelope (request nonces) in the shared store; resolves at once when not replicated. */
  claim(claims: readonly Claim[]): Promise<void>;
  /** Applies the other replicas' writes committed up to now (before answering "unknown"); immediate when not replicated. */
  syncLog(): Promise<void>;
  /** Operator/bot credentials → identities; resolved once per request by `identify` (require-operator.ts). */
  authenticators: Authenticators;
  replayGuard: ReplayGuard;
  /** Ed25519 checks of agent request signatures, on worker threads when `--verify-workers` > 0 (verify-pool.ts). */
  verifier: VerifyPool;
  /** Always the current center key (keys/center-key-ring.ts: it follows rotations). */
  centerKey: KeyPair;
  centerKeyRing: CenterKeyRing;
  centerKeyRotator: Rotator;
  now(): Date;
  startedAt: Date;
  /** Enrollment decisions read-then-write state (token uses), so they run one at a time. */
  enrollLock: Mutex;
  statusPolicy: StatusPolicy;
  /** Recent envelopes per journal plus journal reads, for `GET /api/events`. */
  eventLog: EventLog;
  /** The seq of an envelope id already journaled (recent ids only), for idempotent retries. */
  seenEnvelopeId(author: string, id: string): number | undefined;
  attention: AttentionMonitor;
  /** Outbound webhooks; null when no URL is configured. */
  webhooks: Webhooks | null;
  /** RFC 6962 ledgers over sovereign-scans.jsonl and commands.jsonl. */
  ledgers: { scans: Ledger; commands: Ledger };
  /** Their C2SP checkpoints (checkpoints.ts), updated with each signed head. */
  checkpoints: { scans: CheckpointWriter; commands: CheckpointWriter };
  /** Agents' cosignatures on those checkpoints (witnesses.ts). */
  witnesses: WitnessBook;
  /** Signed commands: issue/list/poll/receipts (command-store.ts). */
  commands: CommandService;
  /** Last-used times of scoped API tokens (api-tokens.ts). */
  apiTokenUsage: ApiTokenUsage;
  /** Rate limits, SSE cap, request timeout (rate-limit.ts). */
  limits: AbuseLimits;
  /** Scheduled scans: schedules, next run times and last runs per node (orchestrator.ts); null when disabled. */
  orchestrator: Orchestrator | null;
  /** Whether this replica runs the singletons (leadership.ts): always the leader with JSONL. */
  leadership: Leadership;
  /** How far this replica trails the log, in seq (store/tail-lag.ts): 0 with JSONL. */
  tailLag: TailLag;
  /** Maintenance windows: start, extend, end, and the leader's end-time timer (ops/maintenance-service.ts). */
  maintenance: MaintenanceService;
}

export type AppEnv = {
  Variables: {
    services: Services;
    /** Set by `identify` when the request carries a credential it recognises. */
    identity: Identity;
    /** The console session behind `identity`, when it came from the cookie. */
    session: Session;
    /** Why a presented credential did not count (a cookie POST without its CSRF token); thrown by requireOperator. */
    authRefusal: VaultMeshError;
    /** Set on agent routes after the request signature verified. */
    nodeId: string;
    rawBody: Buffer;
    /** The key id that verified the agent request: the node's current key, or a replaced one inside its overlap window. */
    signingKeyId: string;
  };
};
