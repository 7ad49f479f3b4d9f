/**
 * The agent's fixed registry of built-in actions. Each is a function of validated args (protocol/actions.ts);
 * programs are started with execFile-style argument vectors (never a shell), under a per-action timeout, with
 * their combined output cut to a byte limit.
 */
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import type { ActionName } from '../protocol/actions.js';
import { boundOutput, COMMAND_LIMITS, type CommandArgs } from '../protocol/command.js';

export interface ActionResult {
  status: 'succeeded' | 'failed';
  exit_code: number | null;
  output: string;
  truncated?: boolean;
  /** Machine-readable reason when failed; the receipt carries it as `reason`. */
  reason?: ActionFailureReason;
}

/**
 * Why a command that ran (or was about to) failed, as its receipt says; docs/PROTOCOL.md lists them beside the
 * verification refusals (`VerifyCode`). Receipt reasons describe a command's outcome, not an HTTP answer.
 */
export const ACTION_FAILURE_REASONS = ['TIMEOUT', 'NOT_FOUND', 'EXIT_NONZERO', 'NOT_IMPLEMENTED', 'UNIT_NOT_ALLOWED', 'SCAN_UPLOAD_FAILED', 'ACTION_ERROR', 'INTERRUPTED'] as const;
export type ActionFailureReason = (typeof ACTION_FAILURE_REASONS)[number];

export interface ActionContext {
  commandId: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

export type ActionFn = (args: CommandArgs, ctx: ActionContext) => Promise<ActionResult>;
export type ActionRegistry = Record<ActionName, ActionFn>;

export interface RunProgramResult {
  exitCode: number | null;
  output: string;
  truncated: boolean;
  timedOut: boolean;
  /** Set when the program could not be started (ENOENT, EACCES). */
  spawnError?: string;
}

/** Runs `file` with `args` (no shell), collecting stdout+stderr up to `maxBytes`, killing it after `timeoutMs`. */
export function runProgram(file: string, args: readonly string[], opts: { timeoutMs: number; maxBytes?: number; signal?: AbortSignal }): Promise<RunProgramResult> {
  const maxBytes = opts.maxBytes ?? COMMAND_LIMITS.output;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let truncated = false;
    let timedOut = false;
    let settled = false;
    const child = spawn(file, [...args], {
      shell: false,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C', SYSTEMD_COLORS: '0', SYSTEMD_PAGER: '', PAGER: 'cat' },
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const take = (b: Buffer) => {
      if (size >= maxBytes) return void (truncated = true);
      const room = maxBytes - size;
      chunks.push(b.length > room ? b.subarray(0, room) : b);
      if (b.length > room) truncated = true;
      size += Math.min(b.length, room);
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    const finish = (r: Omit<RunProgramResult, 'output' | 'truncated' | 'timedOut'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const text = boundOutput(Buffer.concat(chunks).toString('utf8'), maxBytes);
      resolve({ ...r, output: text.output, truncated: truncated || text.truncated, timedOut });
    };
    child.on('error', (err) => finish({ exitCode: null, spawnError: `${(err as NodeJS.ErrnoException).code ?? 'ERROR'}: ${err.message}` }));
    child.on('close', (code) => finish({ exitCode: code }));
  });
}

function fromProgram(r: RunProgramResult, okCodes: readonly number[] = [0]): ActionResult {
  if (r.spawnError) return { status: 'failed', exit_code: null, output: r.spawnError, reason: 'NOT_FOUND' };
  if (r.timedOut) return { status: 'failed', exit_code: r.exitCode, output: r.output, truncated: r.truncated, reason: 'TIMEOUT' };
  const ok = r.exitCode !== null && okCodes.includes(r.exitCode);
  return { status: ok ? 'succeeded' : 'failed', exit_code: r.exitCode, output: r.output, truncated: r.truncated, ...(ok ? {} : { reason: 'EXIT_NONZERO' }) };
}

export interface ActionDeps {
  nodeId: string;
  agentVersion: string;
  /** Units service-restart may touch (VAULTMESH_RESTARTABLE_UNITS); anything else fails with UNIT_NOT_ALLOWED. */
  restartableUnits: ReadonlySet<string>;
  /** Runs a sovereign scan and uploads it; returns a short summary for the receipt. */
  sovereignScan?: (ctx: ActionContext) => Promise<ActionResult>;
  /** Rotates the node key (key-rotation.ts); the output names the old and new key ids. */
  rotateKey?: () => Promise<ActionResult>;
  run?: typeof runProgram;
  now?: () => Date;
}

export function createActionRegistry(deps: ActionDeps): ActionRegistry {
  const run = deps.run ?? runProgram;
  const now = deps.now ?? (() => new Date());
  return {
    async ping() {
      return { status: 'succeeded', exit_code: 0, output: JSON.stringify({ pong: true, node_id: deps.nodeId, hostname: hostname(), agent_version: deps.agentVersion, time: now().toISOString() }) };
    },
    async 'sovereign-scan'(_args, ctx) {
      if (!deps.sovereignScan) return { status: 'failed', exit_code: null, output: 'sovereign scans are not available in this agent', reason: 'NOT_IMPLEMENTED' };
      return deps.sovereignScan(ctx);
    },
    async 'rotate-key'() {
      if (!deps.rotateKey) return { status: 'failed', exit_code: null, output: 'key rotation is not available in this agent', reason: 'NOT_IMPLEMENTED' };
      return deps.rotateKey();
    },
    async 'service-status'(args, ctx) {
      // systemctl status exits 0 (active) or 3 (not active): both are a successful answer to "what is its state".
      const r = await run('systemctl', ['status', '--no-pager', '--full', '--lines=20', '--', String(args.unit)], { timeoutMs: ctx.timeoutMs, ...(ctx.signal ? { signal: ctx.signal } : {}) });
      return fromProgram(r, [0, 3]);
    },
    async 'service-restart'(args, ctx) {
      const unit = String(args.unit);
      if (!deps.restartableUnits.has(unit)) {
        return { status: 'failed', exit_code: null, output: `unit ${unit} is not in VAULTMESH_RESTARTABLE_UNITS on this node`, reason: 'UNIT_NOT_ALLOWED' };
      }
      return fromProgram(await run('systemctl', ['restart', '--', unit], { timeoutMs: ctx.timeoutMs, ...(ctx.signal ? { signal: ctx.signal } : {}) }));
    },
    async 'collect-journal'(args, ctx) {
      const lines = String(Math.min(Math.max(1, Number(args.lines) || 100), 1000));
      return fromProgram(await run('journalctl', ['-u', String(args.unit), '-n', lines, '--no-pager', '-o', 'short-iso'], { timeoutMs: ctx.timeoutMs, ...(ctx.signal ? { signal: ctx.signal } : {}) }));
    },
  };
}
