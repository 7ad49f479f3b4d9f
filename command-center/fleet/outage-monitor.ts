/**
 * The IO shell around outages.ts: on the leader only (center.ts runs it with `whileLeader`), sweeps every node on a
 * timer (an outage is silence: nothing arrives to trigger it) and looks again at a returning node after each of its
 * heartbeats, journaling what `outageActions` says. Fed by live commits only, never by replay: a restart rebuilds
 * the open outages from the journal and declares only what changed while the center was down (marked late).
 */
import { createSweepGate, pacedSweep } from '../../lib/paced-sweep.js';
import { realTimers, type Timers } from '../../lib/timers.js';
import type { Envelope, EnvelopeDraft } from '../../protocol/envelope.js';
import type { FleetState } from './fleet-state.js';
import { outageActions, type OutageContext } from './outages.js';
import { nextTurn } from '../../lib/next-turn.js';

export const OUTAGE_AUTHOR = 'system:outages';

export interface OutageMonitorOptions {
  state: FleetState;
  submit: (draft: EnvelopeDraft) => Promise<unknown>;
  now: () => Date;
  /** Silence after which an approved node is offline (node-status.ts `offlineAfterMs`). */
  thresholdMs: number;
  /** Period of the sweep. */
  intervalMs: number;
  timers?: Timers;
  /** Defers evaluation out of the commit callback (default setImmediate). */
  schedule?: (fn: () => void) => void;
  onError?: (err: unknown) => void;
}

export interface OutageMonitor {
  /** The journal's commit hook: a heartbeat of a node with an open outage is looked at again. */
  onCommit(batch: ReadonlyArray<{ envelope: Envelope }>): void;
  /** Evaluates every node, paced (lib/paced-sweep.ts); during a running sweep, queues one follow-up, never a second beside it. */
  sweep(): Promise<void>;
  start(): void;
  stop(): void;
  /** Resolves when nothing is scheduled or being journaled (tests, shutdown). */
  idle(): Promise<void>;
}

export function createOutageMonitor(opts: OutageMonitorOptions): OutageMonitor {
  const timers = opts.timers ?? realTimers;
  const schedule = opts.schedule ?? ((fn) => void setImmediate(fn));
  const onError = opts.onError ?? ((err) => console.error('outage monitor:', err));
  const dirty = new Set<string>();
  /** Nodes with envelopes being journaled: one chain per node at a time, so nothing is declared twice meanwhile. */
  const busy = new Map<string, Promise<void>>();
  let scheduled = false;
  let handle: unknown;
  let stopped = true;
  let sinceMs = 0;

  const context = (): OutageContext => ({ nowMs: opts.now().getTime(), thresholdMs: opts.thresholdMs, sinceMs });

  /** Returns the chain of appends it started, if any (the sweep paces on it). */
  function evaluate(nodeId: string, ctx: OutageContext): Promise<unknown> | undefined {
    if (busy.has(nodeId)) return undefined;
    const node = opts.state.nodes.get(nodeId);
    if (!node) return undefined;
    const actions = outageActions(node, opts.state.outages.get(nodeId), ctx);
    if (!actions.length) return undefined;
    const p = (async () => {
      // In order: a rejoin before the next offline of the same node.
      for (const a of actions) await opts.submit({ id: a.id, kind: a.kind, node_id: nodeId, author: OUTAGE_AUTHOR, body: a.body });
    })()
      .catch(onError)
      .finally(() => busy.delete(nodeId));
    busy.set(nodeId, p);
    return p;
  }

  // The node list is copied when the sweep starts; nodes added meanwhile wait for the next sweep.
  const sweeps = createSweepGate((cancelled) => {
    const ctx = context();
    return pacedSweep([...opts.state.nodes.keys()], (id) => evaluate(id, ctx), { cancelled: () => stopped || cancelled(), onError });
  });

  function flush(): void {
    scheduled = false;
    if (stopped) return;
    const ctx = context();
    const ids = [...dirty];
    dirty.clear();
    for (const id of ids) evaluate(id, ctx);
  }

  const monitor: OutageMonitor = {
    onCommit(batch) {
      if (stopped || !opts.state.outages.size) return;
      for (const { envelope } of batch) {
        if (envelope.kind === 'heartbeat' && envelope.node_id && opts.state.outages.has(envelope.node_id)) dirty.add(envelope.node_id);
      }
      if (dirty.size && !scheduled) {
        scheduled = true;
        schedule(flush);
      }
    },
    sweep() {
      if (stopped) return Promise.resolve();
      return sweeps.run().catch(onError);
    },
    start() {
      if (!stopped) return;
      stopped = false;
      // Outages that became due before now happened while this center was down or not leading: declared late.
      sinceMs = opts.now().getTime();
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
      while (scheduled || busy.size || sweeps.running) {
        if (sweeps.running) await sweeps.running.catch(() => {});
        else if (busy.size) await Promise.all([...busy.values()]);
        else await nextTurn();
      }
    },
  };
  return monitor;
}
