/**
 * Commands on the center: a pure reducer over `command` / `receipt` envelopes (called from fleet-state.ts, so a
 * restart replays commands.jsonl into the same statuses), and the `CommandService` shell that issues, signs,
 * queues, hands commands to long-polling agents, takes receipts and expires what nobody answered.
 *
 * `command` envelope bodies are the event union `commandEventSchema` (protocol/center-events.ts): issued (the signed
 * command), delivered (attempt n), expired (no receipt in time), completed (after a verified receipt). A `receipt`
 * envelope's body is the signed receipt exactly as the node sent it, so it can be re-verified offline.
 */
import { acceptedPublicKey } from '../fleet/node-keys.js';
import { randomBytes } from 'node:crypto';
import type { Envelope, EnvelopeDraft } from '../../protocol/envelope.js';
import type { EnvelopeOf } from '../../protocol/envelope-kinds.js';
import type { CommandEvent } from '../../protocol/center-events.js';
import { parseActionArgs } from '../../protocol/actions.js';
import { canonicalJson } from '../../protocol/canonical-json.js';
import {
  createCommandPayload,
  signCommand,
  signedReceiptSchema,
  verifyReceipt,
  type CommandArgs,
  type SignedCommand,
  type SignedReceipt,
} from '../../protocol/command.js';
import { VaultMeshError, detailsFromZodIssues } from '../../protocol/errors.js';
import type { KeyPair } from '../../protocol/keys.js';
import { approvalsRequired, checkPolicy, type CommandPolicy } from './command-policy.js';
import { decide, decisionClaim, proposalLapsed, type Proposal } from './approval-rules.js';
import type { FleetState } from '../fleet/fleet-state.js';
import { realTimers, type Timers } from '../../lib/timers.js';
import { claimKey, isClaimTaken, type AppendOptions, type Committed } from '../store/envelope-store.js';

export const COMMAND_STATUSES = ['queued', 'delivered', 'running', 'succeeded', 'failed', 'expired', 'rejected', 'proposed', 'denied', 'proposal_expired'] as const;
export type CommandStatus = (typeof COMMAND_STATUSES)[number];
const OPEN: ReadonlySet<CommandStatus> = new Set(['queued', 'delivered', 'running']);

export interface CommandRecord {
  id: string;
  node_id: string;
  action: string;
  args: CommandArgs;
  status: CommandStatus;
  /** Absent while the command is a proposal waiting for approvals (and for ever once denied or lapsed). */
  signed?: SignedCommand;
  /** The proposer, for a command that needed approval. */
  issued_by: string;
  /** For a proposal: when it was proposed and when the proposal lapses; once signed, the signed command's times. */
  issued_at: string;
  expires_at: string;
  /** The `issued` envelope's seq (the `proposed` one's until then). */
  issued_seq: number;
  /** Commands the policy makes wait for approvals (approval-rules.ts). */
  proposal?: Proposal;
  updated_at: string;
  deliveries: number;
  last_delivered_at?: string;
  receipt?: SignedReceipt;
}

export interface CommandState {
  byId: Map<string, CommandRecord>;
  /** node id → ids of its open (queued / delivered / running) commands, in issue order. */
  open: Map<string, Set<string>>;
  /** `idempotencyIndexKey(author, key)` → command id, for retried `POST /api/commands`. */
  byIdempotencyKey: Map<string, string>;
  /** Ids of proposals still waiting for approvals, oldest first (the expiry sweep and the console's list). */
  proposals: Set<string>;
}

export function createCommandState(): CommandState {
  return { byId: new Map(), open: new Map(), byIdempotencyKey: new Map(), proposals: new Set() };
}

/** Idempotency keys are scoped per author: another identity's key never answers for yours. */
export function idempotencyIndexKey(author: string, key: string): string {
  return `${author}\u0000${key}`;
}

function close(state: CommandState, rec: CommandRecord): void {
  const set = state.open.get(rec.node_id);
  if (!set) return;
  set.delete(rec.id);
  if (!set.size) state.open.delete(rec.node_id);
}

/** Reducer for `command` envelopes. Deterministic, no IO. */
export function applyCommandEnvelope(state: CommandState, env: EnvelopeOf<'command'>): void {
  const b: CommandEvent = env.body;
  const id = b.command_id;
  if (b.event === 'proposed') {
    if (!env.node_id || state.byId.has(id)) return;
    state.byId.set(id, {
      id,
      node_id: env.node_id,
      action: b.action,
      args: b.args,
      status: 'proposed',
      issued_by: env.author,
      issued_at: env.ts,
      expires_at: b.expires_at,
      issued_seq: env.seq,
      updated_at: env.ts,
      deliveries: 0,
      proposal: { proposed_by: env.author, proposed_at: env.ts, proposed_seq: env.seq, required: b.approvals_required, ttl_secs: b.ttl_secs, expires_at: b.expires_at, approvals: [] },
    });
    if (b.idempotency_key !== undefined) state.byIdempotencyKey.set(idempotencyIndexKey(env.author, b.idempotency_key), id);
    state.proposals.add(id);
    return;
  }
  if (b.event === 'issued') {
    const signed = b.signed;
    if (!env.node_id) return;
    const proposed = state.byId.get(id);
    if (proposed) {
      // Only the approval that met the threshold turns a proposal into a signed command; anything else is a repeat.
      if (proposed.status !== 'proposed' || !proposed.proposal || !b.approvals) return;
      proposed.proposal = { ...proposed.proposal, approvals: b.approvals.map((a) => ({ ...a, seq: a.seq ?? env.seq })) };
      Object.assign(proposed, { status: 'queued', signed, issued_at: signed.payload.issued_at, expires_at: signed.payload.expires_at, issued_seq: env.seq, updated_at: env.ts });
      state.proposals.delete(id);
      let open = state.open.get(proposed.node_id);
      if (!open) state.open.set(proposed.node_id, (open = new Set()));
      open.add(id);
      return;
    }
    const rec: CommandRecord = {
      id,
      node_id: env.node_id,
      action: signed.payload.action,
      args: signed.payload.args,
      status: 'queued',
      signed,
      issued_by: env.author,
      issued_at: signed.payload.issued_at,
      expires_at: signed.payload.expires_at,
      issued_seq: env.seq,
      updated_at: env.ts,
      deliveries: 0,
    };
    state.byId.set(id, rec);
    if (b.idempotency_key !== undefined) state.byIdempotencyKey.set(idempotencyIndexKey(env.author, b.idempotency_key), id);
    let set = state.open.get(rec.node_id);
    if (!set) state.open.set(rec.node_id, (set = new Set()));
    set.add(id);
    return;
  }
  const rec = state.byId.get(id);
  if (!rec) return;
  switch (b.event) {
    case 'approved': {
      const p = rec.proposal;
      if (rec.status !== 'proposed' || !p || p.approvals.some((a) => a.by === env.author)) return;
      // Replaced, not pushed: a state snapshot copies records shallowly in its first turn (snapshot/center-state.ts).
      rec.proposal = { ...p, approvals: [...p.approvals, { by: env.author, at: env.ts, seq: env.seq, ...(b.reason !== undefined ? { reason: b.reason } : {}) }] };
      break;
    }
    case 'denied':
      if (rec.status !== 'proposed' || !rec.proposal) return;
      rec.status = 'denied';
      rec.proposal = { ...rec.proposal, denied: { by: env.author, at: env.ts, seq: env.seq, ...(b.reason !== undefined ? { reason: b.reason } : {}) } };
      state.proposals.delete(id);
      break;
    case 'proposal_expired':
      if (rec.status !== 'proposed') return;
      rec.status = 'proposal_expired';
      state.proposals.delete(id);
      break;
    case 'delivered':
      rec.deliveries = Math.max(rec.deliveries + 1, b.attempt);
      rec.last_delivered_at = env.ts;
      if (rec.status === 'queued' || rec.status === 'delivered') rec.status = 'delivered';
      break;
    case 'expired':
      if (!OPEN.has(rec.status)) return;
      rec.status = 'expired';
      close(state, rec);
      break;
    case 'completed':
      if (rec.receipt) rec.status = rec.receipt.payload.status;
      break;
    default:
      return;
  }
  rec.updated_at = env.ts;
}

/** Reducer for `receipt` envelopes: the receipt is the final word, even after the center gave up (expired). */
export function applyReceiptEnvelope(state: CommandState, env: EnvelopeOf<'receipt'>): void {
  const r: SignedReceipt = env.body;
  const rec = state.byId.get(r.payload.command_id);
  if (!rec || rec.receipt) return;
  rec.receipt = r;
  rec.status = r.payload.status;
  rec.updated_at = env.ts;
  close(state, rec);
}

/** The JSON shape of `GET /api/commands/:id` (docs/API.md: `status`, `signed`, `receipt`). */
export function commandView(rec: CommandRecord): Record<string, unknown> {
  return {
    id: rec.id,
    node_id: rec.node_id,
    action: rec.action,
    args: rec.args,
    status: rec.status,
    issued_by: rec.issued_by,
    issued_at: rec.issued_at,
    expires_at: rec.expires_at,
    updated_at: rec.updated_at,
    deliveries: rec.deliveries,
    last_delivered_at: rec.last_delivered_at ?? null,
    signed: rec.signed ?? null,
    receipt: rec.receipt ?? null,
    ...(rec.proposal ? { proposal: proposalView(rec.proposal) } : {}),
  };
}

/** The `proposal` member of a command that needed approval (docs/API.md). */
export function proposalView(p: Proposal): Record<string, unknown> {
  return {
    proposed_by: p.proposed_by,
    proposed_at: p.proposed_at,
    proposed_seq: p.proposed_seq,
    approvals_required: p.required,
    approvals: p.approvals.map((a) => ({ by: a.by, at: a.at, seq: a.seq ?? null, reason: a.reason ?? null })),
    expires_at: p.expires_at,
    ttl_secs: p.ttl_secs,
    denied: p.denied ? { by: p.denied.by, at: p.denied.at, seq: p.denied.seq, reason: p.denied.reason ?? null } : null,
  };
}

export interface IssueInput {
  nodeId: string;
  action: string;
  args?: Record<string, unknown>;
  /** Lifetime in seconds (default 300, 10 … 86400). */
  ttlSecs?: number;
  /** Recorded as the envelope author (operator identity name). */
  author: string;
  /**
   * A client's retry key (`Idempotency-Key`): a second issue with the same author and key returns the first command
   * instead of signing another; with a different node, action or args it is refused (409 DUPLICATE_COMMAND).
   */
  idempotencyKey?: string;
}

export interface DecisionInput {
  id: string;
  /** The authenticated identity deciding (never taken from a request body). */
  author: string;
  kind: 'approve' | 'deny';
  reason?: string;
}

export interface CommandService {
  readonly policy: CommandPolicy;
  /**
   * Validates args, checks the node (enrolled, approved) and the policy, signs with the center key, journals kind
   * `command` and queues it. When the policy requires approvals for the action on the node's profile, it journals a
   * `proposed` event instead and signs nothing (status `proposed`). Throws VaultMeshError: NOT_FOUND (404),
   * NODE_NOT_APPROVED (409), VALIDATION_ERROR (400), POLICY_DENIED (403, message = reason).
   */
  issue(input: IssueInput): Promise<CommandRecord>;
  /** `issue`, saying whether the answer is an earlier command found by its idempotency key. */
  issueOnce(input: IssueInput): Promise<{ record: CommandRecord; duplicate: boolean }>;
  /**
   * Queues a command signed elsewhere (an offline or rotated key, OpenSSL). The center does not re-verify it: the
   * agent is the verifier. In-process only; there is no HTTP route for it.
   */
  enqueueSigned(signed: SignedCommand, opts: { author: string; nodeId?: string }): Promise<CommandRecord>;
  /**
   * Approves or denies a proposal as `author`. The approval that meets the threshold signs the command and queues it
   * in the same `issued` envelope, which names every approval. Throws NOT_FOUND (404), SELF_APPROVAL (403),
   * ALREADY_APPROVED, PROPOSAL_EXPIRED, PROPOSAL_CLOSED (409).
   */
  decide(input: DecisionInput): Promise<CommandRecord>;
  get(id: string): CommandRecord | undefined;
  list(filter?: { nodeId?: string; status?: CommandStatus; limit?: number }): CommandRecord[];
  /** Long-poll for a node: resolves with deliverable commands (marked delivered, durably) or [] after `waitMs`. */
  poll(nodeId: string, waitMs: number, signal?: AbortSignal): Promise<SignedCommand[]>;
  /** Records a receipt after verifying it with the node's enrolled key. */
  acceptReceipt(nodeId: string, body: unknown): Promise<{ record: CommandRecord; duplicate: boolean }>;
  /** Marks overdue open commands expired and lapsed proposals proposal_expired; returns how many. The timer calls it every second. */
  sweep(): Promise<number>;
  /**
   * The commit fan-out's reactor: wakes the long-poll of a node a command was just issued for, whichever replica
   * issued it (commands issued here wake it at once as well).
   */
  onCommit(batch: readonly Committed[]): void;
  /**
   * The expiry sweep alone, as a job to run on the leader only (`whileLeader`): with several replicas the one
   * sweeping replica journals each expiry, and the others apply it from the log. Stopping it leaves long-polls alone.
   */
  readonly expirySweep: { start(): void; stop(): void };
  /** Starts the expiry sweep (a center without replicas: `expirySweep.start()`). */
  start(): void;
  /** Stops the sweep and releases every waiting long-poll (shutdown). */
  stop(): void;
}

export interface CommandServiceDeps {
  state: FleetState;
  submit(draft: EnvelopeDraft, opts?: AppendOptions): Promise<{ envelope: Envelope; duplicate: boolean }>;
  /** Catches up with other replicas' writes (an Idempotency-Key or a command issued elsewhere); none on one center. */
  sync?: () => Promise<void>;
  centerKey: KeyPair;
  policy: CommandPolicy;
  now?: () => Date;
  random?: (n: number) => Uint8Array;
  /** A delivered command without a receipt is handed out again after this long (agent restarted, response lost). */
  redeliverMs?: number;
  /** A delivered command is marked expired this long after expires_at without a receipt (it may still be running). */
  receiptGraceMs?: number;
  sweepIntervalMs?: number;
  /** The expiry sweep and the long-poll waits run on these (fake ones in tests). */
  timers?: Timers;
  onError?: (err: unknown) => void;
}

/** A `command` envelope draft; typing the body against the registry keeps what is written and what is read in step. */
function commandDraft(nodeId: string, author: string, body: CommandEvent, id?: string): EnvelopeDraft<CommandEvent> {
  return { ...(id !== undefined ? { id } : {}), kind: 'command', node_id: nodeId, author, body };
}

function issuedBefore(rec: CommandRecord, isoTime: string): boolean {
  return Date.parse(rec.issued_at) < Date.parse(isoTime);
}

export function createCommandService(deps: CommandServiceDeps): CommandService {
  const now = deps.now ?? (() => new Date());
  const timers = deps.timers ?? realTimers;
  const random = deps.random ?? randomBytes;
  const redeliverMs = deps.redeliverMs ?? 30_000;
  const graceMs = deps.receiptGraceMs ?? 120_000;
  const cs = () => deps.state.commands;
  // One waiting long-poll per node: a newer poll (the agent restarted) supersedes the older one.
  const waiters = new Map<string, () => void>();
  const delivering = new Set<string>();
  const expiring = new Set<string>();
  let timer: unknown;
  let stopped = false;

  const wake = (nodeId: string) => waiters.get(nodeId)?.();

  const deliverable = (nodeId: string, nowMs: number): { ready: CommandRecord[]; nextAt: number } => {
    const ready: CommandRecord[] = [];
    let nextAt = Infinity;
    const enrolledAt = deps.state.nodes.get(nodeId)?.enrolled_at;
    for (const id of cs().open.get(nodeId) ?? []) {
      const rec = cs().byId.get(id)!;
      if (delivering.has(id) || nowMs >= Date.parse(rec.expires_at)) continue;
      // A node enrolled again (after a revocation) is a new identity: it never gets its predecessor's commands.
      if (enrolledAt !== undefined && issuedBefore(rec, enrolledAt)) continue;
      if (rec.status === 'queued') ready.push(rec);
      else if (rec.last_delivered_at) {
        const due = Date.parse(rec.last_delivered_at) + redeliverMs;
        if (nowMs >= due) ready.push(rec);
        else nextAt = Math.min(nextAt, due);
      }
    }
    return { ready, nextAt };
  };

  const queue = async (signed: SignedCommand, nodeId: string, author: string, idempotencyKey?: string): Promise<CommandRecord> => {
    if (cs().byId.has(signed.payload.id)) throw new VaultMeshError('DUPLICATE_COMMAND', `command ${signed.payload.id} exists`, { status: 409 });
    await deps.submit(
      commandDraft(
        nodeId,
        author,
        { event: 'issued', command_id: signed.payload.id, status: 'queued', action: signed.payload.action, signed, ...(idempotencyKey !== undefined ? { idempotency_key: idempotencyKey } : {}) },
        `cmd-issued-${signed.payload.id}`,
      ),
      // Across replicas the key is claimed with the command: the same key sent to two replicas signs one command.
      idempotencyKey !== undefined ? { claims: [{ key: claimKey('idempotency-key', 'command', author, idempotencyKey) }] } : undefined,
    );
    wake(nodeId);
    return cs().byId.get(signed.payload.id)!;
  };

  const propose = async (input: IssueInput & { args: CommandArgs }, id: string, ttlSecs: number, required: number): Promise<CommandRecord> => {
    const expiresAt = new Date(now().getTime() + deps.policy.proposal_ttl_secs * 1000).toISOString();
    await deps.submit(
      commandDraft(
        input.nodeId,
        input.author,
        { event: 'proposed', command_id: id, status: 'proposed', action: input.action, args: input.args, ttl_secs: ttlSecs, approvals_required: required, expires_at: expiresAt, ...(input.idempotencyKey !== undefined ? { idempotency_key: input.idempotencyKey } : {}) },
        `cmd-proposed-${id}`,
      ),
      input.idempotencyKey !== undefined ? { claims: [{ key: claimKey('idempotency-key', 'command', input.author, input.idempotencyKey) }] } : undefined,
    );
    return cs().byId.get(id)!;
  };

  /**
   * What was true when the command was proposed must still be when it is signed: the node approved and not enrolled
   * again since (a new identity never gets its predecessor's commands), and the policy (which a restart may have
   * changed) still allowing it. Otherwise the approval is refused and the proposal stays as it was.
   */
  const checkStillIssuable = (rec: CommandRecord, p: Proposal): void => {
    const node = deps.state.nodes.get(rec.node_id);
    if (!node || node.enrollment !== 'approved') throw new VaultMeshError('NODE_NOT_APPROVED', `node ${rec.node_id} is ${node?.enrollment ?? 'unknown'}: command ${rec.id} cannot be signed (deny it)`, { status: 409 });
    if (Date.parse(node.enrolled_at) > Date.parse(p.proposed_at)) {
      throw new VaultMeshError('PROPOSAL_CLOSED', `node ${rec.node_id} enrolled again after command ${rec.id} was proposed: propose it anew`, { status: 409 });
    }
    const decision = checkPolicy(deps.policy, { osProfile: node.os_profile, action: rec.action, args: rec.args });
    if (!decision.ok) throw new VaultMeshError('POLICY_DENIED', `${decision.reason} (the policy changed since command ${rec.id} was proposed)`, { status: 403 });
  };

  /**
   * Decisions on one proposal (approvals, denies, its expiry) run one at a time on this center; decisions on
   * different proposals run side by side, so their appends share a durable write. Replicas: the slot claims.
   */
  const deciding = new Map<string, Promise<unknown>>();
  const oneAtATime = <T>(id: string, fn: () => Promise<T>): Promise<T> => {
    const result = (deciding.get(id) ?? Promise.resolve()).then(fn, fn);
    const tail = result.catch(() => undefined);
    deciding.set(id, tail);
    // The last one out removes the entry, so the map holds only proposals being decided right now.
    void tail.then(() => {
      if (deciding.get(id) === tail) deciding.delete(id);
    });
    return result;
  };

  const expireProposals = async (nowMs: number): Promise<number> => {
    const lapsed: CommandRecord[] = [];
    for (const id of cs().proposals) {
      const rec = cs().byId.get(id)!;
      if (rec.proposal && proposalLapsed(rec.proposal, nowMs)) lapsed.push(rec);
    }
    const expired: number[] = await Promise.all(
      lapsed.map((r) =>
        oneAtATime(r.id, async () => {
          // Decided meanwhile (an approval just before the lapse, the lock's previous holder).
          if (r.status !== 'proposed') return 0;
          try {
            await deps.submit(
              commandDraft(r.node_id, 'center', { event: 'proposal_expired', command_id: r.id, status: 'proposal_expired' }, `cmd-proposal-expired-${r.id}`),
              { claims: [{ key: decisionClaim(r.id, r.proposal!.approvals.length + 1) }] },
            );
            return 1;
          } catch (err) {
            // A decision on another replica took the slot: the next sweep sees its outcome.
            if (!isClaimTaken(err)) throw err;
            return 0;
          }
        }),
      ),
    );
    return expired.reduce((a, b) => a + b, 0);
  };

  // Issues under way per idempotency key, so concurrent retries wait for the first instead of signing twice.
  const issuing = new Map<string, Promise<CommandRecord>>();
  const service: CommandService = {
    policy: deps.policy,

    async issue(input) {
      const node = deps.state.nodes.get(input.nodeId);
      if (!node) throw new VaultMeshError('NOT_FOUND', `no such node ${input.nodeId}`, { status: 404 });
      if (node.enrollment !== 'approved') throw new VaultMeshError('NODE_NOT_APPROVED', `node ${input.nodeId} is ${node.enrollment}`, { status: 409 });
      const parsed = parseActionArgs(input.action, input.args ?? {});
      if (!parsed.ok) {
        // An action outside the built-in registry is a policy matter (403), bad args for a known one a 400.
        if (parsed.code === 'UNKNOWN_ACTION') throw new VaultMeshError('POLICY_DENIED', parsed.message, { status: 403 });
        throw new VaultMeshError('VALIDATION_ERROR', parsed.message, { status: 400, details: [{ path: 'args', message: parsed.message }] });
      }
      const decision = checkPolicy(deps.policy, { osProfile: node.os_profile, action: input.action, args: parsed.args });
      if (!decision.ok) {
        const path = decision.code === 'UNIT_NOT_ALLOWED' ? 'args.unit' : decision.code === 'ACTION_NOT_ALLOWED' ? 'action' : 'node_id';
        throw new VaultMeshError('POLICY_DENIED', decision.reason, { status: 403, details: [{ path, message: decision.reason, rule: decision.code }] });
      }
      const ttlSecs = input.ttlSecs ?? 300;
      if (!Number.isInteger(ttlSecs) || ttlSecs < 10 || ttlSecs > 86_400) {
        throw new VaultMeshError('VALIDATION_ERROR', 'ttl_secs must be an integer from 10 to 86400', { status: 400 });
      }
      const payload = createCommandPayload({
        id: `cmd-${Buffer.from(random(8)).toString('hex')}`,
        nodeId: input.nodeId,
        action: input.action,
        args: parsed.args,
        nonce: Buffer.from(random(16)).toString('hex'),
        now: now(),
        ttlMs: ttlSecs * 1000,
        keyId: deps.centerKey.keyId,
      });
      const required = approvalsRequired(deps.policy, node.os_profile, input.action);
      if (required > 0) return propose({ ...input, args: parsed.args }, payload.id, ttlSecs, required);
      return queue(signCommand(payload, deps.centerKey), input.nodeId, input.author, input.idempotencyKey);
    },

    decide(input) {
      return oneAtATime(input.id, async () => {
        for (let attempt = 1; ; attempt++) {
          let rec = cs().byId.get(input.id);
          if (!rec && deps.sync) {
            await deps.sync(); // proposed on another replica a moment ago
            rec = cs().byId.get(input.id);
          }
          if (!rec) throw new VaultMeshError('NOT_FOUND', `no such command ${input.id}`, { status: 404 });
          const d = decide(rec, input.author, input.kind, now().getTime());
          if (!d.ok) throw new VaultMeshError(d.code, d.message, { status: d.status });
          const p = rec.proposal!;
          const claims = { claims: [{ key: decisionClaim(rec.id, d.slot) }] };
          try {
            if (input.kind === 'deny') {
              await deps.submit(commandDraft(rec.node_id, input.author, { event: 'denied', command_id: rec.id, status: 'denied', ...(input.reason ? { reason: input.reason } : {}) }), claims);
            } else if (!d.issues) {
              await deps.submit(commandDraft(rec.node_id, input.author, { event: 'approved', command_id: rec.id, status: 'proposed', approval: d.slot, of: p.required, ...(input.reason ? { reason: input.reason } : {}) }), claims);
            } else {
              checkStillIssuable(rec, p);
              const at = now();
              const signed = signCommand(
                createCommandPayload({ id: rec.id, nodeId: rec.node_id, action: rec.action, args: rec.args, nonce: Buffer.from(random(16)).toString('hex'), now: at, ttlMs: p.ttl_secs * 1000, keyId: deps.centerKey.keyId }),
                deps.centerKey,
              );
              // The approval that meets the threshold and the signature are one envelope: no crash can leave a
              // proposal approved but unsigned, or signed without the approval that allowed it.
              const approvals = [
                ...p.approvals.map((a) => ({ by: a.by, at: a.at, ...(a.seq !== undefined ? { seq: a.seq } : {}), ...(a.reason !== undefined ? { reason: a.reason } : {}) })),
                { by: input.author, at: at.toISOString(), ...(input.reason ? { reason: input.reason } : {}) },
              ];
              await deps.submit(
                commandDraft(rec.node_id, input.author, { event: 'issued', command_id: rec.id, status: 'queued', action: rec.action, signed, proposed_by: p.proposed_by, approvals }, `cmd-issued-${rec.id}`),
                claims,
              );
              wake(rec.node_id);
            }
            return cs().byId.get(rec.id)!;
          } catch (err) {
            // Another replica decided in this slot: catch up and decide again on the new state.
            if (!isClaimTaken(err) || !deps.sync || attempt >= 5) throw err;
            await deps.sync();
          }
        }
      });
    },

    async issueOnce(input) {
      if (input.idempotencyKey === undefined) return { record: await service.issue(input), duplicate: false };
      const key = idempotencyIndexKey(input.author, input.idempotencyKey);
      const sameRequest = (rec: CommandRecord) => {
        const args = parseActionArgs(input.action, input.args ?? {});
        return rec.node_id === input.nodeId && rec.action === input.action && args.ok && canonicalJson(args.args) === canonicalJson(rec.args);
      };
      const answer = (rec: CommandRecord) => {
        if (!sameRequest(rec)) {
          throw new VaultMeshError('DUPLICATE_COMMAND', `Idempotency-Key ${input.idempotencyKey} was already used for command ${rec.id} (${rec.action} on ${rec.node_id} with other arguments); use a new key`, { status: 409 });
        }
        return { record: rec, duplicate: true };
      };
      const earlier = cs().byIdempotencyKey.get(key);
      if (earlier !== undefined) return answer(cs().byId.get(earlier)!);
      const pending = issuing.get(key);
      if (pending) return answer(await pending);
      const p = service.issue(input);
      issuing.set(key, p);
      try {
        return { record: await p, duplicate: false };
      } catch (err) {
        if (!isClaimTaken(err) || !deps.sync) throw err;
        // Another replica issued under this key a moment ago: answer with its command once it is applied here.
        await deps.sync();
        const first = cs().byIdempotencyKey.get(key);
        if (first === undefined) throw err;
        return answer(cs().byId.get(first)!);
      } finally {
        issuing.delete(key);
      }
    },

    enqueueSigned(signed, opts) {
      return queue(signed, opts.nodeId ?? signed.payload.node_id, opts.author);
    },

    get: (id) => cs().byId.get(id),

    list(filter = {}) {
      const limit = Math.max(1, Math.min(filter.limit ?? 100, 1000));
      const out: CommandRecord[] = [];
      const all = [...cs().byId.values()];
      for (let i = all.length - 1; i >= 0 && out.length < limit; i--) {
        const r = all[i]!;
        if (filter.nodeId && r.node_id !== filter.nodeId) continue;
        if (filter.status && r.status !== filter.status) continue;
        out.push(r);
      }
      return out;
    },

    async poll(nodeId, waitMs, signal) {
      let superseded = false;
      // The wait is bounded by a timer, not by comparing clock readings: a timer is monotonic (a wall-clock step
      // cannot stretch a long-poll) and runs on the injected timers.
      let timedOut = waitMs <= 0;
      let wakeUp: (() => void) | undefined;
      const deadline = timedOut ? undefined : timers.setTimeout(() => {
        timedOut = true;
        wakeUp?.();
      }, waitMs);
      try {
        for (;;) {
          if (signal?.aborted || superseded || stopped) return [];
          const { ready, nextAt } = deliverable(nodeId, now().getTime());
          if (ready.length) {
            for (const r of ready) delivering.add(r.id);
            try {
              await Promise.all(
                ready.map((r) =>
                  deps.submit(commandDraft(nodeId, `node:${nodeId}`, { event: 'delivered', command_id: r.id, status: 'delivered', attempt: r.deliveries + 1 })),
                ),
              );
            } finally {
              for (const r of ready) delivering.delete(r.id);
            }
            return ready.map((r) => r.signed!); // open commands are always signed
          }
          if (timedOut) return [];
          await new Promise<void>((resolve) => {
            const done = () => {
              if (t !== undefined) timers.clearTimeout(t);
              signal?.removeEventListener('abort', done);
              if (waiters.get(nodeId) === done) waiters.delete(nodeId);
              wakeUp = undefined;
              resolve();
            };
            // A redelivery falls due: look again then.
            const t = Number.isFinite(nextAt) ? timers.setTimeout(done, Math.max(1, nextAt - now().getTime())) : undefined;
            wakeUp = done;
            signal?.addEventListener('abort', done, { once: true });
            const previous = waiters.get(nodeId);
            waiters.set(nodeId, done);
            if (previous) previous.call(undefined);
          });
          // If another poll for this node replaced our waiter, that one now owns delivery.
          if (waiters.has(nodeId) && !signal?.aborted) superseded = true;
        }
      } finally {
        if (deadline !== undefined) timers.clearTimeout(deadline);
      }
    },

    async acceptReceipt(nodeId, body) {
      const parsed = signedReceiptSchema.safeParse(body);
      if (!parsed.success) throw new VaultMeshError('VALIDATION_ERROR', 'invalid receipt', { status: 400, details: detailsFromZodIssues(parsed.error.issues) });
      const receipt = parsed.data;
      if (receipt.payload.node_id !== nodeId) throw new VaultMeshError('NODE_MISMATCH', 'receipt node_id differs from the signing node', { status: 403 });
      const node = deps.state.nodes.get(nodeId)!;
      // A command that finished just before its node rotated keys carries the old key's signature: good in the overlap.
      const receiptKey = acceptedPublicKey(node, receipt.key_id, now().getTime());
      if (!receiptKey || !verifyReceipt(receipt, receiptKey)) {
        throw new VaultMeshError('BAD_SIGNATURE', `receipt is not signed by the enrolled key of ${nodeId}`, { status: 401 });
      }
      let rec = cs().byId.get(receipt.payload.command_id);
      // Issued on another replica and not applied here yet.
      if (!rec && deps.sync) {
        await deps.sync();
        rec = cs().byId.get(receipt.payload.command_id);
      }
      if (!rec || rec.node_id !== nodeId || issuedBefore(rec, node.enrolled_at)) {
        throw new VaultMeshError('UNKNOWN_COMMAND', `no command ${receipt.payload.command_id} for node ${nodeId}`, { status: 404 });
      }
      if (rec.receipt) return { record: rec, duplicate: true };
      const [r] = await Promise.all([
        deps.submit({ id: `rcpt-${rec.id}`, kind: 'receipt', node_id: nodeId, author: `node:${nodeId}`, body: receipt }),
        deps.submit(commandDraft(nodeId, `node:${nodeId}`, { event: 'completed', command_id: rec.id, status: receipt.payload.status }, `cmd-done-${rec.id}`)),
      ]);
      return { record: rec, duplicate: r.duplicate };
    },

    async sweep() {
      const nowMs = now().getTime();
      const overdue: CommandRecord[] = [];
      for (const ids of cs().open.values()) {
        for (const id of ids) {
          const rec = cs().byId.get(id)!;
          const deadline = Date.parse(rec.expires_at) + (rec.status === 'queued' ? 0 : graceMs);
          if (nowMs > deadline && !expiring.has(id)) overdue.push(rec);
        }
      }
      for (const r of overdue) expiring.add(r.id);
      try {
        await Promise.all(
          overdue.map((r) => deps.submit(commandDraft(r.node_id, 'center', { event: 'expired', command_id: r.id, status: 'expired' }, `cmd-expired-${r.id}`))),
        );
      } finally {
        for (const r of overdue) expiring.delete(r.id);
      }
      return overdue.length + (cs().proposals.size ? await expireProposals(nowMs) : 0);
    },

    onCommit(batch) {
      for (const { envelope } of batch) {
        if (envelope.kind === 'command' && envelope.node_id !== undefined && (envelope.body as { event?: unknown }).event === 'issued') wake(envelope.node_id);
      }
    },

    expirySweep: {
      start() {
        if (timer !== undefined || stopped) return;
        timer = timers.setInterval(() => {
          service.sweep().catch((err) => deps.onError?.(err));
        }, deps.sweepIntervalMs ?? 1000);
      },
      stop() {
        if (timer !== undefined) timers.clearInterval(timer);
        timer = undefined;
      },
    },

    start() {
      service.expirySweep.start();
    },

    stop() {
      stopped = true;
      service.expirySweep.stop();
      for (const w of [...waiters.values()]) w();
    },
  };
  return service;
}
