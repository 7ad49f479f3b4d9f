/**
 * The agent's command loop: long-poll the center, verify each command (protocol/command.ts) against the pinned
 * center keys (VAULTMESH_CC_PUBKEY ∪ keys trusted on first use), enforce the local allowlist, record the nonce
 * durably, run the built-in action and post a receipt signed by the node key. Every refusal is reported as a
 * `rejected` (or `expired`) receipt with its reason code. Idempotent by command id: a redelivered command that
 * already ran is answered with its stored receipt and never run twice.
 */
import { parseActionArgs, isActionName } from '../protocol/actions.js';
import {
  boundOutput,
  COMMAND_VERSION,
  signReceipt,
  verifyCommand,
  type ReceiptPayload,
  type SignedCommand,
  type SignedReceipt,
  type VerifyCode,
} from '../protocol/command.js';
import { idSchema } from '../protocol/envelope.js';
import { isVaultMeshError } from '../protocol/errors.js';
import type { KeyPair } from '../protocol/keys.js';
import type { ActionFailureReason, ActionRegistry, ActionResult } from './actions.js';
import type { NonceStore } from './nonce-store.js';

/** The two calls the runner needs from the signed center client (node-agent/cc-client.ts). */
export interface RunnerClient {
  get<T>(path: string, opts?: { timeoutMs?: number }): Promise<T>;
  post<T>(path: string, body: unknown): Promise<T>;
}

export interface CommandRunnerDeps {
  nodeId: string;
  key: Pick<KeyPair, 'seed' | 'keyId'>;
  client: RunnerClient;
  nonces: NonceStore;
  /** key_id → public key hex; read for every command so keys learned at enrollment apply at once. */
  pinnedKeys(): Record<string, string>;
  allowedActions: ReadonlySet<string>;
  restartableUnits: ReadonlySet<string>;
  /** Units service-status and collect-journal may read (`*`: any); see `localReadableUnits`. */
  readableUnits: ReadonlySet<string>;
  actions: ActionRegistry;
  maxSkewMs: number;
  /** Per-action timeout; `default` for actions not named. */
  timeoutsMs: { default: number } & Partial<Record<string, number>>;
  now?: () => Date;
  log?: (msg: string) => void;
  /** Why a command key is unknown, when the agent knows (a center key rotation it missed): added to the receipt. */
  explainUnknownKey?: (keyId: string) => string | undefined;
}

export type HandleOutcome =
  | { outcome: 'ran' | 'rejected' | 'resent'; receipt: SignedReceipt; posted: boolean }
  | { outcome: 'skipped'; reason: 'running' | 'no_id' };

export interface CommandRunner {
  /** Verifies and runs one delivered command (or answers it from the store); posts and returns its receipt. */
  handle(raw: unknown): Promise<HandleOutcome>;
  /** One poll (`wait` seconds, 0 = answer at once) and every command it returned, in order. */
  pollOnce(waitSecs: number, signal?: AbortSignal): Promise<HandleOutcome[]>;
  /** Polls until `signal` aborts, backing off on errors (not enrolled yet, center unreachable). */
  loop(opts: { waitSecs: number; signal: AbortSignal; backoffMs?: number }): Promise<void>;
  /** Commands currently executing. */
  readonly running: ReadonlySet<string>;
}

export function createCommandRunner(deps: CommandRunnerDeps): CommandRunner {
  const now = deps.now ?? (() => new Date());
  const log = deps.log ?? (() => {});
  const running = new Set<string>();

  const makeReceipt = (commandId: string, startedAt: Date, r: { status: ReceiptPayload['status']; exit_code: number | null; output: string; truncated?: boolean; reason?: ActionFailureReason | VerifyCode }): SignedReceipt => {
    const out = boundOutput(r.output);
    const payload: ReceiptPayload = {
      v: COMMAND_VERSION,
      command_id: commandId,
      node_id: deps.nodeId,
      status: r.status,
      ...(r.reason ? { reason: r.reason } : {}),
      exit_code: r.exit_code,
      started_at: startedAt.toISOString(),
      finished_at: now().toISOString(),
      output: out.output,
      truncated: Boolean(r.truncated) || out.truncated,
    };
    return signReceipt(payload, deps.key);
  };

  const post = async (receipt: SignedReceipt): Promise<boolean> => {
    for (let attempt = 1; ; attempt++) {
      try {
        await deps.client.post('/api/agent/receipts', receipt);
        return true;
      } catch (err) {
        const code = isVaultMeshError(err) ? err.code : 'ERROR';
        // 4xx other than unreachability will not get better by retrying.
        const permanent = isVaultMeshError(err) && err.status >= 400 && err.status < 500;
        if (permanent || attempt >= 3) {
          log(`receipt for ${receipt.payload.command_id} not delivered (${code}: ${(err as Error).message}); it is kept and re-sent if the command is redelivered`);
          return false;
        }
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  };

  const reject = async (commandId: string, code: VerifyCode, message: string, store: { expiresMs: number } | undefined): Promise<HandleOutcome> => {
    const t = now();
    const receipt = makeReceipt(commandId, t, { status: code === 'EXPIRED' ? 'expired' : 'rejected', exit_code: null, output: message, reason: code });
    // Only an authentic command's verdict is remembered by id: a forged copy must not poison the real command's id.
    if (store) deps.nonces.storeReceipt(commandId, store.expiresMs, receipt);
    log(`command ${commandId} refused: ${code}: ${message}`);
    return { outcome: 'rejected', receipt, posted: await post(receipt) };
  };

  const runner: CommandRunner = {
    running,

    async handle(raw) {
      const rawId = (raw as { payload?: { id?: unknown } } | null)?.payload?.id;
      const commandId = idSchema.safeParse(rawId).success ? (rawId as string) : undefined;
      if (!commandId) {
        log('dropped a delivered command without a usable id (cannot be answered)');
        return { outcome: 'skipped', reason: 'no_id' };
      }
      const stored = deps.nonces.receipt(commandId);
      if (stored) return { outcome: 'resent', receipt: stored, posted: await post(stored) };
      if (running.has(commandId)) return { outcome: 'skipped', reason: 'running' };

      const verdict = verifyCommand(raw, {
        nodeId: deps.nodeId,
        pinnedKeys: deps.pinnedKeys(),
        nowMs: now().getTime(),
        maxSkewMs: deps.maxSkewMs,
        nonceSeen: (nonce) => deps.nonces.has(nonce),
        allowedActions: deps.allowedActions,
      });
      if (!verdict.ok) {
        const authentic = verdict.code !== 'MALFORMED' && verdict.code !== 'UNKNOWN_KEY' && verdict.code !== 'BAD_SIGNATURE';
        const cmd = raw as SignedCommand;
        if (verdict.code === 'NONCE_REUSED') {
          const prior = deps.nonces.get(cmd.payload.nonce);
          if (prior?.commandId === commandId) {
            // Same command, accepted before but no receipt: we stopped while it ran. Never run it twice.
            const receipt = makeReceipt(commandId, now(), { status: 'failed', exit_code: null, output: 'the agent stopped while this command was running; not run again', reason: 'INTERRUPTED' });
            deps.nonces.storeReceipt(commandId, Date.parse(cmd.payload.expires_at), receipt);
            return { outcome: 'rejected', receipt, posted: await post(receipt) };
          }
          // A different command reusing a nonce is a replay: answer it, but do not remember it by id.
          return reject(commandId, verdict.code, verdict.message, undefined);
        }
        const why = verdict.code === 'UNKNOWN_KEY' && typeof cmd?.key_id === 'string' ? deps.explainUnknownKey?.(cmd.key_id) : undefined;
        return reject(commandId, verdict.code, why ? `${verdict.message}: ${why}` : verdict.message, authentic ? { expiresMs: Date.parse(cmd.payload.expires_at) } : undefined);
      }

      const p = verdict.command.payload;
      const expiresMs = Date.parse(p.expires_at);
      const args = parseActionArgs(p.action, p.args);
      if (!args.ok || !isActionName(p.action)) {
        deps.nonces.record(p.nonce, p.id, expiresMs);
        return reject(p.id, 'MALFORMED', args.ok ? `unknown action ${p.action}` : args.message, { expiresMs });
      }
      if (p.action === 'service-restart' && !deps.restartableUnits.has(String(args.args.unit))) {
        deps.nonces.record(p.nonce, p.id, expiresMs);
        return reject(p.id, 'ACTION_NOT_ALLOWED', `unit ${String(args.args.unit)} is not in VAULTMESH_RESTARTABLE_UNITS on this node`, { expiresMs });
      }
      // A unit's journal can hold secrets: the node decides which units the center may read, whatever its policy says.
      if ((p.action === 'service-status' || p.action === 'collect-journal') && !deps.readableUnits.has('*') && !deps.readableUnits.has(String(args.args.unit))) {
        deps.nonces.record(p.nonce, p.id, expiresMs);
        return reject(p.id, 'ACTION_NOT_ALLOWED', `unit ${String(args.args.unit)} is not in VAULTMESH_READABLE_UNITS on this node`, { expiresMs });
      }

      // Durable before running: after a crash the command is refused (INTERRUPTED), never run a second time.
      deps.nonces.record(p.nonce, p.id, expiresMs);
      running.add(p.id);
      const startedAt = now();
      let result: ActionResult;
      const timeoutMs = deps.timeoutsMs[p.action] ?? deps.timeoutsMs.default;
      try {
        result = await deps.actions[p.action](args.args, { commandId: p.id, timeoutMs });
      } catch (err) {
        result = { status: 'failed', exit_code: null, output: `action failed: ${(err as Error).message}`, reason: 'ACTION_ERROR' };
      } finally {
        running.delete(p.id);
      }
      const receipt = makeReceipt(p.id, startedAt, result);
      deps.nonces.storeReceipt(p.id, expiresMs, receipt);
      deps.nonces.prune();
      log(`command ${p.id} (${p.action}) ${result.status}${result.reason ? ` (${result.reason})` : ''}`);
      return { outcome: 'ran', receipt, posted: await post(receipt) };
    },

    async pollOnce(waitSecs, signal) {
      const res = await deps.client.get<{ commands: unknown[] }>(`/api/agent/commands?wait=${waitSecs}`, { timeoutMs: (waitSecs + 15) * 1000, ...(signal ? { signal } : {}) });
      const out: HandleOutcome[] = [];
      // In order, one at a time: commands for one node are few, and ordering is what an operator expects.
      for (const raw of res?.commands ?? []) out.push(await runner.handle(raw));
      return out;
    },

    async loop({ waitSecs, signal, backoffMs = 5000 }) {
      let failures = 0;
      while (!signal.aborted) {
        try {
          await runner.pollOnce(waitSecs, signal);
          failures = 0;
        } catch (err) {
          if (signal.aborted) return; // stopping: the held poll was cut on purpose, not a failure to report
          failures++;
          if (failures === 1 || failures % 20 === 0) log(`command poll failed: ${isVaultMeshError(err) ? `${err.code}: ${err.message}` : String(err)}`);
          const delay = Math.min(backoffMs * 2 ** Math.min(failures - 1, 4), 60_000) * (0.8 + Math.random() * 0.4);
          await new Promise<void>((res) => {
            const t = setTimeout(done, delay);
            function done() {
              clearTimeout(t);
              signal.removeEventListener('abort', done);
              res();
            }
            signal.addEventListener('abort', done, { once: true });
          });
        }
      }
    },
  };
  return runner;
}
