/**
 * The IO shell around the attention model: re-evaluates a node after each committed envelope about it and every
 * node on a timer (staleness happens when nothing arrives), and journals an `attention` envelope only when a
 * node's status differs from the last journaled one. It is fed by live commits only, never by replay, so
 * restarting re-applies journaled transitions without producing new ones.
 */
import { createSweepGate, pacedSweep } from '../../lib/paced-sweep.js';
import { realTimers, type Timers } from '../../lib/timers.js';
import type { Envelope, EnvelopeDraft } from '../../protocol/envelope.js';
import { assessNode, journaledStatus, type AttentionBody, type AttentionPolicy, type AttentionStatus } from './attention.js';
import type { FleetState } from '../fleet/fleet-state.js';
import { coveredNodes } from './maintenance.js';
import { nextTurn } from '../../lib/next-turn.js';

export const ATTENTION_AUTHOR = 'system:attention';


export interface AttentionMonitorOptions {
  state: FleetState;
  submit: (draft: EnvelopeDraft) => Promise<unknown>;
  now: () => Date;
  policy: AttentionPolicy;
  /** Period of the staleness sweep. */
  intervalMs: number;
  timers?: Timers;
  /** Defers evaluation out of the commit callback (default setImmediate). */
  schedule?: (fn: () => void) => void;
  onError?: (err: unknown) => void;
}

export interface AttentionMonitor {
  /** The journal's commit hook: marks the nodes of the batch for evaluation. */
  onCommit(batch: ReadonlyArray<{ envelope: Envelope }>): void;
  /** Evaluates every node, paced (lib/paced-sweep.ts); during a running sweep, queues one follow-up, never a second beside it. */
  sweep(): Promise<void>;
  start(): void;
  stop(): void;
  /** Resolves when nothing is scheduled or being journaled (tests, shutdown). */
  idle(): Promise<void>;
}

export function createAttentionMonitor(opts: AttentionMonitorOptions): AttentionMonitor {
  const timers = opts.timers ?? realTimers;
  const schedule = opts.schedule ?? ((fn) => void setImmediate(fn));
  const onError = opts.onError ?? ((err) => console.error('attention monitor:', err));
  const dirty = new Set<string>();
  /** Status being journaled per node, so a burst of commits never appends the same transition twice. */
  const pending = new Map<string, AttentionStatus>();
  const inflight = new Set<Promise<unknown>>();
  let scheduled = false;
  let handle: unknown;
  let stopped = false;

  /** Returns the append it started, if any (the sweep paces on it). */
  function evaluate(nodeId: string, nowMs: number): Promise<unknown> | undefined {
    const node = opts.state.nodes.get(nodeId);
    if (!node) return undefined;
    const known = pending.get(nodeId) ?? journaledStatus(opts.state, nodeId);
    // A node that left the fleet (revoked, rejected) is no longer assessed; clear a standing alarm once.
    const next = node.enrollment === 'approved' ? assessNode(node, nowMs, opts.policy) : { status: 'ok' as const, reasons: [] };
    if (next.status === known) return undefined;
    pending.set(nodeId, next.status);
    const body: AttentionBody = { status: next.status, previous: known, reasons: next.reasons };
    const p = opts
      .submit({ kind: 'attention', node_id: nodeId, author: ATTENTION_AUTHOR, body })
      .catch(onError)
      .finally(() => {
        if (pending.get(nodeId) === next.status) pending.delete(nodeId);
        inflight.delete(p);
      });
    inflight.add(p);
    return p;
  }

  // The node list is copied when the sweep starts; nodes added meanwhile wait for the next sweep.
  const sweeps = createSweepGate((cancelled) => {
    const nowMs = opts.now().getTime();
    return pacedSweep([...opts.state.nodes.keys()], (id) => evaluate(id, nowMs), { cancelled: () => stopped || cancelled(), onError });
  });

  function flush(): void {
    scheduled = false;
    if (stopped) return;
    const nowMs = opts.now().getTime();
    const ids = [...dirty];
    dirty.clear();
    for (const id of ids) evaluate(id, nowMs);
  }

  const monitor: AttentionMonitor = {
    onCommit(batch) {
      for (const { envelope } of batch) {
        // A window started or ended: its nodes' alarms are silenced or back now, not at the next sweep.
        if (envelope.kind === 'maintenance') for (const id of maintenanceNodes(opts.state, envelope)) dirty.add(id);
        if (envelope.kind === 'attention' || !envelope.node_id) continue;
        dirty.add(envelope.node_id);
      }
      if (dirty.size && !scheduled && !stopped) {
        scheduled = true;
        schedule(flush);
      }
    },
    sweep() {
      if (stopped) return Promise.resolve();
      return sweeps.run().catch(onError);
    },
    start() {
      stopped = false;
      handle ??= timers.setInterval(() => void monitor.sweep(), opts.intervalMs);
      void monitor.sweep();
    },
    stop() {
      stopped = true;
      sweeps.cancel();
      if (handle !== undefined) timers.clearInterval(handle);
      handle = undefined;
    },
    async idle() {
      while (scheduled || inflight.size || sweeps.running) {
        if (sweeps.running) await sweeps.running.catch(() => {});
        else if (inflight.size) await Promise.all([...inflight]);
        else await nextTurn();
      }
    },
  };
  return monitor;
}

function maintenanceNodes(state: FleetState, env: Envelope): string[] {
  const id = (env.body as { window_id?: unknown }).window_id;
  const w = typeof id === 'string' ? state.maintenance?.windows.get(id) : undefined;
  return w ? coveredNodes(state, w) : [];
}
