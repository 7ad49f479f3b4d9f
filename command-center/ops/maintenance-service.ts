/**
 * The IO shell of maintenance windows: starting, extending and ending one (shared by the API and the console, so
 * both check the same rules and journal the same envelopes), and the leader's timer that journals the `ended` of a
 * window whose end time has passed. State is the journal's (ops/maintenance.ts): nothing here survives a restart,
 * and nothing needs to.
 *
 * One end per window: ends run one at a time here, and on replicas sharing PostgreSQL each `ended` claims
 * `maintenance-end/<window>` with its append, so an operator's end racing the timer (or another replica) journals one.
 */
import { createHash, randomBytes } from 'node:crypto';
import { realTimers, type Timers } from '../../lib/timers.js';
import type { EnvelopeDraft } from '../../protocol/envelope.js';
import { VaultMeshError } from '../../protocol/errors.js';
import { MAINTENANCE_LIMITS, type MaintenanceBody, type MaintenanceStartRequest, type MaintenanceTarget } from '../../protocol/maintenance.js';
import type { FleetState } from '../fleet/fleet-state.js';
import { claimKey, isClaimTaken, type AppendOptions } from '../store/envelope-store.js';
import { createMutex } from '../store/mutex.js';
import { isOpen, overdueWindows, windowView, type MaintenanceView, type MaintenanceWindow } from './maintenance.js';

export const MAINTENANCE_AUTHOR = 'system:maintenance';

export interface MaintenanceServiceOptions {
  state: FleetState;
  submit: (draft: EnvelopeDraft, opts?: AppendOptions) => Promise<{ duplicate: boolean }>;
  /** Applies other replicas' writes (after a lost claim); immediate without replicas. */
  syncLog: () => Promise<void>;
  now: () => Date;
  timers?: Timers;
  /** Period of the end-time check (default 1 s: a window ends within a second of its end time). */
  tickMs?: number;
  onError?: (err: unknown) => void;
}

export interface MaintenanceService {
  /**
   * `idempotencyKey`: a retry with the same key (same author) answers the window the first request started, with
   * `duplicate: true`, instead of starting a second one (the key is the `started` envelope's id).
   */
  start(req: MaintenanceStartRequest, author: string, opts?: { idempotencyKey?: string | undefined }): Promise<MaintenanceView & { duplicate?: true }>;
  extend(id: string, req: { until?: string | undefined; for_secs?: number | undefined }, author: string): Promise<MaintenanceView>;
  /** Ends a window early (an operator). */
  end(id: string, author: string): Promise<MaintenanceView>;
  /** Journals the end of every window past its end time (the timer's step; tests call it directly). */
  endOverdue(): Promise<number>;
  /** The leader-only timer (leadership.ts `whileLeader`). */
  timer: { start(): void; stop(): Promise<void> };
}

const bad = (path: string, message: string) => new VaultMeshError('VALIDATION_ERROR', message, { status: 400, details: [{ path, message }] });
export const endClaim = (windowId: string) => claimKey('maintenance-end', windowId);

export function newWindowId(): string {
  return `mw-${randomBytes(6).toString('hex')}`;
}

/** The window id of a keyed start: the same author and key always name the same window. */
export function keyedWindowId(author: string, key: string): string {
  return `mw-${createHash('sha256').update(`${author}\n${key}`).digest('hex').slice(0, 12)}`;
}

export function createMaintenanceService(opts: MaintenanceServiceOptions): MaintenanceService {
  const timers = opts.timers ?? realTimers;
  const onError = opts.onError ?? ((err) => console.error('maintenance:', err));
  const lock = createMutex();
  let handle: unknown;
  let running: Promise<unknown> | undefined;

  const windowOf = (id: string): MaintenanceWindow => {
    const w = opts.state.maintenance?.windows.get(id);
    if (!w) throw new VaultMeshError('MAINTENANCE_NOT_FOUND', `no maintenance window ${id}`, { status: 404 });
    return w;
  };
  const nodeIdOf = (t: MaintenanceTarget) => ('node_id' in t ? { node_id: t.node_id } : {});

  /** Journals under the lock, retrying once after catching up when another replica took the claim. */
  async function journal(id: string, body: MaintenanceBody, author: string, claims: string[]): Promise<void> {
    const w = windowOf(id);
    const draft: EnvelopeDraft = { kind: 'maintenance', author, ...nodeIdOf(w.target), body };
    try {
      await opts.submit(draft, { claims: claims.map((key) => ({ key })) });
    } catch (err) {
      if (!isClaimTaken(err)) throw err;
      await opts.syncLog();
      throw new VaultMeshError('MAINTENANCE_ENDED', `maintenance window ${id} was ended or changed meanwhile`, { status: 409 });
    }
  }

  function endOf(req: { until?: string | undefined; for_secs?: number | undefined }, fromMs: number): number {
    return req.until !== undefined ? Date.parse(req.until) : fromMs + req.for_secs! * 1000;
  }

  const service: MaintenanceService = {
    start(req, author, startOpts = {}) {
      return lock.run(async () => {
        const key = startOpts.idempotencyKey;
        const id = key !== undefined ? keyedWindowId(author, key) : newWindowId();
        const again = () => {
          const w = opts.state.maintenance?.windows.get(id);
          return w ? { ...windowView(opts.state, w, opts.now().getTime()), duplicate: true as const } : undefined;
        };
        if (key !== undefined) {
          const seen = again();
          if (seen) return seen;
        }
        const nowMs = opts.now().getTime();
        const target: MaintenanceTarget = req.node_id !== undefined ? { node_id: req.node_id } : req.os_profile !== undefined ? { os_profile: req.os_profile } : { tag: req.tag! };
        if ('node_id' in target && !opts.state.nodes.has(target.node_id)) throw new VaultMeshError('NOT_FOUND', `no node ${target.node_id}`, { status: 404 });
        // A start in the past means now: a window never silences what already happened.
        const startsMs = req.starts_at !== undefined ? Math.max(Date.parse(req.starts_at), nowMs) : nowMs;
        if (startsMs - nowMs > MAINTENANCE_LIMITS.maxLeadSecs * 1000) throw bad('starts_at', `a window starts at most ${MAINTENANCE_LIMITS.maxLeadSecs / 86_400} days ahead`);
        const endsMs = endOf(req, startsMs);
        if (endsMs <= startsMs) throw bad('until', 'the window must end after it starts (and after now)');
        if (endsMs - startsMs > MAINTENANCE_LIMITS.maxDurationSecs * 1000) throw bad('until', `a window lasts at most ${MAINTENANCE_LIMITS.maxDurationSecs / 86_400} days`);
        const body: MaintenanceBody = { event: 'started', window_id: id, target, reason: req.reason, starts_at: new Date(startsMs).toISOString(), ends_at: new Date(endsMs).toISOString(), scans: req.scans };
        const r = await opts.submit({ kind: 'maintenance', ...(key !== undefined ? { id: key } : {}), author, ...nodeIdOf(target), body });
        if (r.duplicate) {
          // Another replica journaled this key first: answer its window once this replica has applied it.
          await opts.syncLog();
          const seen = again();
          if (seen) return seen;
        }
        return windowView(opts.state, windowOf(id), opts.now().getTime());
      });
    },

    extend(id, req, author) {
      return lock.run(async () => {
        const nowMs = opts.now().getTime();
        const w = windowOf(id);
        if (!isOpen(w, nowMs)) throw new VaultMeshError('MAINTENANCE_ENDED', `maintenance window ${id} has ended`, { status: 409 });
        const endsMs = endOf(req, nowMs);
        if (endsMs <= Math.max(nowMs, w.startsMs)) throw bad('until', 'the new end must be after now and after the window starts');
        if (endsMs - w.startsMs > MAINTENANCE_LIMITS.maxDurationSecs * 1000) throw bad('until', `a window lasts at most ${MAINTENANCE_LIMITS.maxDurationSecs / 86_400} days`);
        await journal(id, { event: 'extended', window_id: id, ends_at: new Date(endsMs).toISOString() }, author, [claimKey('maintenance-extend', id, w.ends_at)]);
        return windowView(opts.state, w, opts.now().getTime());
      });
    },

    end(id, author) {
      return lock.run(async () => {
        const w = windowOf(id);
        if (!isOpen(w, opts.now().getTime())) throw new VaultMeshError('MAINTENANCE_ENDED', `maintenance window ${id} has ended`, { status: 409 });
        await journal(id, { event: 'ended', window_id: id, early: true }, author, [endClaim(id)]);
        return windowView(opts.state, w, opts.now().getTime());
      });
    },

    endOverdue() {
      return lock.run(async () => {
        let ended = 0;
        for (const w of overdueWindows(opts.state, opts.now().getTime())) {
          try {
            await journal(w.id, { event: 'ended', window_id: w.id, early: false }, MAINTENANCE_AUTHOR, [endClaim(w.id)]);
            ended++;
          } catch (err) {
            // Another replica (or an operator) ended it first: that is the one end it gets.
            if (!(err instanceof VaultMeshError && err.code === 'MAINTENANCE_ENDED')) throw err;
          }
        }
        return ended;
      });
    },

    timer: {
      start() {
        handle ??= timers.setInterval(() => {
          running ??= service
            .endOverdue()
            .catch(onError)
            .finally(() => (running = undefined));
        }, opts.tickMs ?? 1000);
      },
      async stop() {
        if (handle !== undefined) timers.clearInterval(handle);
        handle = undefined;
        await running;
      },
    },
  };
  return service;
}
