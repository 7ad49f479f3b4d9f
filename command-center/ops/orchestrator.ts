/**
 * The fleet orchestrator: issues scheduled commands (by default a `sovereign-scan` every 6 h ± 10 %) to approved,
 * online nodes. `planTick` is the pure core that decides who is due; `createOrchestrator` is the thin shell with an
 * injected clock and timer that issues through `CommandService.issue` — the normal command path, so the command
 * policy is applied there and nowhere else.
 *
 * Nothing is stored apart from the journals: the last run of each (node, action) is the newest command issued by
 * author `orchestrator` (its `issued_at`), so replaying commands.jsonl restores the schedule after a restart.
 * No pile-up: a (node, action) with an open (queued / delivered / running) command of that action gets nothing more,
 * and a node that is offline gets nothing queued at all.
 */
import { realTimers, type Timers } from '../../lib/timers.js';
import { createHash } from 'node:crypto';
import type { CommandArgs } from '../../protocol/command.js';
import { isVaultMeshError } from '../../protocol/errors.js';
import type { Logger } from '../../lib/logger.js';
import type { CommandRecord, CommandService, CommandStatus } from '../commands/command-store.js';
import type { FleetState, EnrollmentStatus, NodeRecord } from '../fleet/fleet-state.js';
import { nodeStatus, type NodeStatus, type StatusPolicy } from '../fleet/node-status.js';
import { schedulesFor, type ScheduleEntry, type ScheduleFile } from './schedule.js';
import { maintenanceSpans, type MaintenanceSpan } from './maintenance.js';
import { nextTurn } from '../../lib/next-turn.js';

export const ORCHESTRATOR_AUTHOR = 'orchestrator';

/** What planTick needs to know about a node. */
export interface PlanNode {
  node_id: string;
  os_profile: string;
  enrollment: EnrollmentStatus;
  /** Heard from recently enough (node-status.ts: not offline). */
  online: boolean;
  /** When the node was approved (ms); a node never run is first due within one jitter span of it. */
  anchorMs: number;
  /** Maintenance windows covering the node, in start order (ops/maintenance.ts `maintenanceSpans`). */
  windows?: readonly MaintenanceSpan[];
}

export interface PlannedRun {
  nodeId: string;
  action: string;
  args: CommandArgs;
  ttlSecs: number;
  /** When it became due (ms); the most overdue are issued first. */
  dueMs: number;
}

/** A deterministic uniform [0, 1) per key: the same node and run always get the same jitter. */
export type JitterSource = (key: string) => number;

/** Key of a (node, action) pair in `lastRuns` / `pending`. Node ids and action names never contain `|`. */
export function runKey(nodeId: string, action: string): string {
  return `${nodeId}|${action}`;
}

/** SHA-256 of the key, first 48 bits as a fraction of 2^48. */
export function hashUnit(key: string): number {
  return createHash('sha256').update(key).digest().readUIntBE(0, 6) / 2 ** 48;
}

/**
 * `source` remembering its answers (at most `max` keys; past that it starts afresh). Every tick asks for the jitter
 * of every approved node, and the keys change only when a node runs: at 10,000 nodes hashing them all again was
 * ≈ 10,000 SHA-256 per tick, a stall of tens of ms on the event loop that ingest shares.
 */
export function rememberedJitter(source: JitterSource, max = 200_000): JitterSource {
  const seen = new Map<string, number>();
  return (key) => {
    let u = seen.get(key);
    if (u === undefined) {
      if (seen.size >= max) seen.clear();
      u = source(key);
      seen.set(key, u);
    }
    return u;
  };
}

/**
 * When (node, action) is next due. After a run: last + interval ± jitter, the jitter drawn from a hash of node,
 * action and last run, so it differs from run to run but not from tick to tick. Never run: the anchor (approval)
 * plus a hashed offset within one jitter span, so a fleet approved at once does not scan at once.
 */
export function nextRunMs(entry: ScheduleEntry, nodeId: string, lastRunMs: number | undefined, anchorMs: number, random: JitterSource = hashUnit): number {
  const intervalMs = entry.every_secs * 1000;
  const spanMs = (entry.jitter_pct / 100) * intervalMs;
  if (lastRunMs === undefined) return anchorMs + Math.floor(random(`${nodeId}|${entry.action}|first`) * spanMs);
  const u = random(`${nodeId}|${entry.action}|${lastRunMs}`);
  return lastRunMs + intervalMs + Math.round((2 * u - 1) * spanMs);
}

/** Bound on the run slots skipped in one computation (a 30-day window over a 1-minute schedule is 43 200). */
const MAX_SKIPPED_SLOTS = 50_000;

/**
 * The next run time once maintenance windows had their say: a slot inside a `skip` window is dropped (the next slot
 * is computed from it, as if it had run), a slot inside a `defer` window moves to the window's end. `window` names the
 * window that moved it last (for the schedule view).
 */
export function adjustForMaintenance(
  entry: ScheduleEntry,
  nodeId: string,
  atMs: number,
  anchorMs: number,
  windows: readonly MaintenanceSpan[] | undefined,
  nowMs: number,
  random: JitterSource = hashUnit,
): { atMs: number; window?: MaintenanceSpan } {
  if (!windows?.length) return { atMs };
  let at = atMs;
  // An overdue slot (the node was offline, or the window began before the next tick) would run now: if a window
  // holds now, the slot counts as falling at the window's start (stable from tick to tick).
  if (at < nowMs) {
    const holding = windows.find((s) => nowMs >= s.fromMs && nowMs < s.toMs);
    if (holding) at = Math.max(at, holding.fromMs);
  }
  let moved: MaintenanceSpan | undefined;
  for (let guard = 0; guard < MAX_SKIPPED_SLOTS; guard++) {
    const w = windows.find((s) => at >= s.fromMs && at < s.toMs);
    if (!w) return moved ? { atMs: at, window: moved } : { atMs: at };
    moved = w;
    at = w.scans === 'defer' ? w.toMs : Math.max(nextRunMs(entry, nodeId, at, anchorMs, random), at + 1);
  }
  return { atMs: moved ? moved.toMs : at, ...(moved ? { window: moved } : {}) };
}

/**
 * The runs due at `nowMs`: for every approved, online node, each schedule of its profile whose next run time has
 * come and that has nothing pending. Sorted most overdue first (then by node id), at most `max_per_tick`.
 * Policy is not checked here: the command path decides when the shell issues.
 */
export function planTick(
  nodes: Iterable<PlanNode>,
  schedules: ScheduleFile,
  lastRuns: ReadonlyMap<string, number>,
  pending: ReadonlySet<string>,
  nowMs: number,
  random: JitterSource = hashUnit,
): PlannedRun[] {
  const due: PlannedRun[] = [];
  for (const node of nodes) {
    if (node.enrollment !== 'approved' || !node.online) continue;
    for (const entry of schedulesFor(schedules, node.os_profile)) {
      const key = runKey(node.node_id, entry.action);
      if (pending.has(key)) continue;
      const { atMs: at } = adjustForMaintenance(entry, node.node_id, nextRunMs(entry, node.node_id, lastRuns.get(key), node.anchorMs, random), node.anchorMs, node.windows, nowMs, random);
      if (at > nowMs) continue;
      due.push({ nodeId: node.node_id, action: entry.action, args: entry.args, ttlSecs: entry.ttl_secs, dueMs: at });
    }
  }
  due.sort(byDue);
  return due.slice(0, schedules.max_per_tick);
}

/** Most overdue first, then by node id and action. */
function byDue(a: PlannedRun, b: PlannedRun): number {
  return a.dueMs - b.dueMs || (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : a.action < b.action ? -1 : a.action > b.action ? 1 : 0);
}

export interface LastRun {
  ms: number;
  commandId: string;
}

/** The newest orchestrator-issued command per (node, action): the schedule's memory, rebuilt from state. */
export function lastRunsFromCommands(records: Iterable<CommandRecord>): Map<string, LastRun> {
  const out = new Map<string, LastRun>();
  for (const r of records) {
    if (r.issued_by !== ORCHESTRATOR_AUTHOR) continue;
    const ms = Date.parse(r.issued_at);
    const key = runKey(r.node_id, r.action);
    const prev = out.get(key);
    if (!prev || ms >= prev.ms) out.set(key, { ms, commandId: r.id });
  }
  return out;
}

/** (node, action) pairs with an open command of that action, whoever issued it. */
export function pendingFromCommands(state: FleetState): Set<string> {
  const out = new Set<string>();
  for (const [nodeId, ids] of state.commands.open) {
    for (const id of ids) {
      const rec = state.commands.byId.get(id);
      if (rec) out.add(runKey(nodeId, rec.action));
    }
  }
  // A proposal waiting for approvals is pending too: the schedule does not propose the same run again meanwhile.
  for (const id of state.commands.proposals) {
    const rec = state.commands.byId.get(id);
    if (rec) out.add(runKey(rec.node_id, rec.action));
  }
  return out;
}

export type RunState = 'scheduled' | 'due' | 'pending' | 'offline' | 'blocked' | 'maintenance';

export interface NodeRunView {
  action: string;
  every_secs: number;
  jitter_pct: number;
  state: RunState;
  /** When the orchestrator will next issue (it also waits for the node to be online and nothing pending). */
  next_run_at: string;
  last_run_at: string | null;
  last_command_id: string | null;
  last_status: CommandStatus | null;
  /** Why the last attempt failed (e.g. the policy's reason), while the orchestrator waits to retry. */
  blocked_reason?: string;
  /** The maintenance window that skipped or deferred the next run (state `maintenance` while it is active). */
  maintenance?: { window_id: string; scans: MaintenanceSpan['scans']; until: string };
}

export interface NodeScheduleView {
  node_id: string;
  hostname: string;
  os_profile: string;
  status: NodeStatus;
  runs: NodeRunView[];
}

export interface Orchestrator {
  readonly schedule: ScheduleFile;
  readonly scheduleFile: string | undefined;
  readonly tickMs: number;
  /** Plans and issues what is due now; resolves with the commands issued. Overlapping calls share one tick. */
  tick(): Promise<CommandRecord[]>;
  /** Per approved node: its schedules, next run times and last runs (for the API and the console). */
  view(filter?: { nodeId?: string }): NodeScheduleView[];
  start(): void;
  stop(): void;
  /** Resolves when no tick is running (tests, shutdown). */
  idle(): Promise<void>;
}

export interface OrchestratorOptions {
  state: FleetState;
  commands: Pick<CommandService, 'issue'>;
  schedule: ScheduleFile;
  scheduleFile?: string;
  statusPolicy: StatusPolicy;
  now: () => Date;
  tickMs: number;
  timers?: Timers;
  random?: JitterSource;
  log: Logger;
}


const NOT_ONLINE: ReadonlySet<NodeStatus> = new Set(['offline', 'pending', 'rejected', 'revoked']);

/** Nodes planned, and commands started, per turn of the event loop in a tick. */
const PLAN_SLICE = 1000;
const ISSUE_SLICE = 25;

/** The most overdue `max` of two plans, in planTick's order (each is already in that order and at most `max`). */
export function mergePlans(a: readonly PlannedRun[], b: readonly PlannedRun[], max: number): PlannedRun[] {
  return [...a, ...b].sort(byDue).slice(0, max);
}


export function createOrchestrator(opts: OrchestratorOptions): Orchestrator {
  const timers = opts.timers ?? realTimers;
  const random = opts.random ?? rememberedJitter(hashUnit);
  const lastRuns = lastRunsFromCommands(opts.state.commands.byId.values());
  /** (node, action) → no retry before untilMs (a denied or failed issue), with the reason for the view. */
  const blocked = new Map<string, { untilMs: number; reason: string }>();
  /** `os_profile|action` pairs whose denial was already logged: once per process, not every tick. */
  const deniedLogged = new Set<string>();
  const inflight = new Set<string>();
  let running: Promise<CommandRecord[]> | undefined;
  let handle: unknown;
  let stopped = false;

  const anchorOf = (n: { decided_at?: string; enrolled_at: string }) => {
    const ms = Date.parse(n.decided_at ?? n.enrolled_at);
    return Number.isFinite(ms) ? ms : 0;
  };

  function planNode(n: NodeRecord, nowMs: number): PlanNode | undefined {
    if (n.enrollment !== 'approved') return undefined;
    const windows = maintenanceSpans(opts.state, n);
    return { node_id: n.node_id, os_profile: n.os_profile, enrollment: n.enrollment, online: !NOT_ONLINE.has(nodeStatus(n, nowMs, opts.statusPolicy)), anchorMs: anchorOf(n), ...(windows.length ? { windows } : {}) };
  }

  function waiting(nowMs: number): Set<string> {
    const set = pendingFromCommands(opts.state);
    for (const k of inflight) set.add(k);
    for (const [k, b] of blocked) {
      if (b.untilMs > nowMs) set.add(k);
      else blocked.delete(k);
    }
    return set;
  }

  async function issueOne(run: PlannedRun, nowMs: number): Promise<CommandRecord | undefined> {
    const key = runKey(run.nodeId, run.action);
    inflight.add(key);
    try {
      const rec = await opts.commands.issue({ nodeId: run.nodeId, action: run.action, args: run.args, ttlSecs: run.ttlSecs, author: ORCHESTRATOR_AUTHOR });
      lastRuns.set(key, { ms: Date.parse(rec.issued_at), commandId: rec.id });
      blocked.delete(key);
      return rec;
    } catch (err) {
      const node = opts.state.nodes.get(run.nodeId);
      const entry = node && schedulesFor(opts.schedule, node.os_profile).find((e) => e.action === run.action);
      const message = (err as Error).message ?? String(err);
      if (isVaultMeshError(err) && err.code === 'POLICY_DENIED') {
        // The policy is fixed for the life of the process: try this node again one interval later, say so once.
        blocked.set(key, { untilMs: nowMs + (entry?.every_secs ?? 3600) * 1000, reason: message });
        const logKey = `${node?.os_profile ?? '?'}|${run.action}`;
        if (!deniedLogged.has(logKey)) {
          deniedLogged.add(logKey);
          opts.log.warn(`orchestrator: the command policy denies scheduled ${run.action} for os_profile ${node?.os_profile ?? '?'} (${message}); those nodes are skipped`);
        }
      } else {
        // Anything else (journal trouble, a node revoked meanwhile) is retried on the next tick.
        blocked.set(key, { untilMs: nowMs + opts.tickMs, reason: message });
        opts.log.error(`orchestrator: issuing ${run.action} to ${run.nodeId} failed: ${message}`);
      }
      return undefined;
    } finally {
      inflight.delete(key);
    }
  }

  /**
   * Plans over the nodes `PLAN_SLICE` at a time and issues `ISSUE_SLICE` at a time, yielding to the event loop
   * between slices: at 10,000 nodes one tick in a single turn held ingest for ≈ 100 ms. The plan is the same as one
   * `planTick` over every node (the most overdue `max_per_tick` of the slices' most overdue), and what became
   * pending while it yielded (an operator's command, a run in flight) is left out just before issuing.
   */
  async function runTick(): Promise<CommandRecord[]> {
    const nowMs = opts.now().getTime();
    const lastMs = new Map<string, number>();
    for (const [k, v] of lastRuns) lastMs.set(k, v.ms);
    const pending = waiting(nowMs);
    const nodes = [...opts.state.nodes.values()];
    let plan: PlannedRun[] = [];
    for (let i = 0; i < nodes.length; i += PLAN_SLICE) {
      if (i > 0) await nextTurn();
      const slice: PlanNode[] = [];
      for (const n of nodes.slice(i, i + PLAN_SLICE)) {
        const p = planNode(n, nowMs);
        if (p) slice.push(p);
      }
      plan = mergePlans(plan, planTick(slice, opts.schedule, lastMs, pending, nowMs, random), opts.schedule.max_per_tick);
    }
    const still = waiting(nowMs);
    plan = plan.filter((run) => !still.has(runKey(run.nodeId, run.action)));
    // Issued together so the journal's group commit shares the fsyncs; started a slice per turn (each issue signs).
    const issuing: Promise<CommandRecord | undefined>[] = [];
    for (let i = 0; i < plan.length; i += ISSUE_SLICE) {
      if (i > 0) await nextTurn();
      for (const run of plan.slice(i, i + ISSUE_SLICE)) issuing.push(issueOne(run, nowMs));
    }
    const issued = await Promise.all(issuing);
    return issued.filter((r): r is CommandRecord => r !== undefined);
  }

  const orchestrator: Orchestrator = {
    schedule: opts.schedule,
    scheduleFile: opts.scheduleFile,
    tickMs: opts.tickMs,

    tick() {
      if (stopped) return Promise.resolve([]);
      running ??= runTick().finally(() => (running = undefined));
      return running;
    },

    view(filter = {}) {
      const nowMs = opts.now().getTime();
      const pending = pendingFromCommands(opts.state);
      const out: NodeScheduleView[] = [];
      const nodes = filter.nodeId ? [opts.state.nodes.get(filter.nodeId)].filter((n) => n !== undefined) : opts.state.nodes.values();
      for (const n of nodes) {
        if (n.enrollment !== 'approved') continue;
        const status = nodeStatus(n, nowMs, opts.statusPolicy);
        const windows = maintenanceSpans(opts.state, n);
        const runs: NodeRunView[] = schedulesFor(opts.schedule, n.os_profile).map((entry) => {
          const key = runKey(n.node_id, entry.action);
          const last = lastRuns.get(key);
          const b = blocked.get(key);
          const live = b && b.untilMs > nowMs ? b : undefined;
          const adjusted = adjustForMaintenance(entry, n.node_id, nextRunMs(entry, n.node_id, last?.ms, anchorOf(n), random), anchorOf(n), windows, nowMs, random);
          const next = Math.max(adjusted.atMs, live?.untilMs ?? -Infinity);
          const inWindow = adjusted.window && adjusted.window.fromMs <= nowMs && nowMs < adjusted.window.toMs;
          const state: RunState = pending.has(key) || inflight.has(key) ? 'pending' : inWindow ? 'maintenance' : NOT_ONLINE.has(status) ? 'offline' : live ? 'blocked' : next <= nowMs ? 'due' : 'scheduled';
          return {
            action: entry.action,
            every_secs: entry.every_secs,
            jitter_pct: entry.jitter_pct,
            state,
            next_run_at: new Date(next).toISOString(),
            last_run_at: last ? new Date(last.ms).toISOString() : null,
            last_command_id: last?.commandId ?? null,
            last_status: last ? (opts.state.commands.byId.get(last.commandId)?.status ?? null) : null,
            ...(live ? { blocked_reason: live.reason } : {}),
            ...(adjusted.window && adjusted.window.toMs > nowMs ? { maintenance: { window_id: adjusted.window.windowId, scans: adjusted.window.scans, until: new Date(adjusted.window.toMs).toISOString() } } : {}),
          };
        });
        out.push({ node_id: n.node_id, hostname: n.hostname, os_profile: n.os_profile, status, runs });
      }
      return out.sort((a, b) => (a.node_id < b.node_id ? -1 : a.node_id > b.node_id ? 1 : 0));
    },

    start() {
      stopped = false;
      handle ??= timers.setInterval(() => {
        orchestrator.tick().catch((err) => opts.log.error(`orchestrator tick failed: ${(err as Error).message ?? err}`));
      }, opts.tickMs);
    },

    stop() {
      stopped = true;
      if (handle !== undefined) timers.clearInterval(handle);
      handle = undefined;
    },

    async idle() {
      while (running) await running.catch(() => undefined);
    },
  };
  return orchestrator;
}
