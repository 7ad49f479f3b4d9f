/**
 * Prometheus metrics (prom-client) on a registry owned by one center instance, never the global default, so
 * tests and several centers in one process do not share counters.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What the signature-check pool (auth/verify-pool.ts) counts. */
export interface VerifyStats {
  onWorkers: number;
  inline: number;
  batches: number;
  replaced: number;
  workers: number;
}

export interface CenterMetrics {
  registry: Registry;
  httpRequests: Counter<'route' | 'method' | 'status'>;
  journalAppendSeconds: Histogram;
  journalFsyncSeconds: Histogram;
  journalBatchSize: Histogram;
  sseClients: Gauge;
  nodesByStatus: Gauge<'status'>;
  replaySeconds: Gauge;
  journalSeq: Gauge;
  /** 1 while this replica leads (runs the singletons, signs heads). */
  isLeader: Gauge;
  leaderChanges: Counter;
  /** Seqs committed to the log that this replica has not applied (0 with JSONL); set on scrape. */
  tailLag: Gauge;
  /** Where the tail-lag gauge reads from at scrape time (set by the center). */
  tailLagSource: { read?: () => Promise<number | null> };
  snapshotPauseSeconds: Histogram;
  snapshotBytes: Gauge;
  /** Counts one answered HTTP request; label children are cached, so the hot path allocates no label object. */
  countHttpRequest(route: string, method: string, status: number): void;
  /** Where signature checks ran (verify-pool.ts), read at scrape time from `source`. */
  verifyFrom(source: () => VerifyStats): void;
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): CenterMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'vaultmesh_cc_' });
  const tailLagSource: CenterMetrics['tailLagSource'] = {};
  const latency = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
  const httpRequests = new Counter({ name: 'vaultmesh_http_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'] as const, registers: [registry] });
  // Routes are the registered patterns and statuses a handful: this stays small.
  const children = new Map<string, { inc(): void }>();
  let verifySource: (() => VerifyStats) | undefined;
  new Counter({
    name: 'vaultmesh_signature_checks_total',
    help: 'Ed25519 checks of agent request signatures, by where they ran (worker thread or inline on the main thread)',
    labelNames: ['where'] as const,
    registers: [registry],
    collect() {
      const s = verifySource?.();
      if (!s) return;
      this.reset();
      this.inc({ where: 'worker' }, s.onWorkers);
      this.inc({ where: 'inline' }, s.inline);
    },
  });
  // Totals kept by the pool itself, copied in at scrape time.
  const verifyTotal = (name: string, help: string, pick: (s: VerifyStats) => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const s = verifySource?.();
        if (!s) return;
        this.reset();
        this.inc(pick(s));
      },
    });
  verifyTotal('vaultmesh_signature_check_batches_total', 'Wake-ups of a sleeping verification worker (each takes every check handed over until it sleeps again)', (s) => s.batches);
  verifyTotal('vaultmesh_signature_workers_replaced_total', 'Verification workers that died and were replaced', (s) => s.replaced);
  new Gauge({
    name: 'vaultmesh_signature_workers',
    help: 'Verification worker threads alive (0 = checks run on the main thread)',
    registers: [registry],
    collect() {
      const s = verifySource?.();
      if (s) this.set(s.workers);
    },
  });
  return {
    registry,
    httpRequests,
    countHttpRequest(route, method, status) {
      const key = `${status} ${method} ${route}`;
      let child = children.get(key);
      if (!child) {
        child = httpRequests.labels(route, method, String(status));
        children.set(key, child);
      }
      child.inc();
    },
    verifyFrom(source) {
      verifySource = source;
    },
    journalAppendSeconds: new Histogram({ name: 'vaultmesh_journal_append_seconds', help: 'Time from append to durable acknowledgement', buckets: latency, registers: [registry] }),
    journalFsyncSeconds: new Histogram({ name: 'vaultmesh_journal_fsync_seconds', help: 'time to make one group commit durable (its O_DSYNC write; for PostgreSQL, its commit)', buckets: latency, registers: [registry] }),
    journalBatchSize: new Histogram({ name: 'vaultmesh_journal_batch_entries', help: 'Envelopes per group commit', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512], registers: [registry] }),
    sseClients: new Gauge({ name: 'vaultmesh_sse_clients', help: 'Connected SSE clients', registers: [registry] }),
    nodesByStatus: new Gauge({ name: 'vaultmesh_nodes', help: 'Nodes by status', labelNames: ['status'], registers: [registry] }),
    replaySeconds: new Gauge({ name: 'vaultmesh_replay_duration_seconds', help: 'Journal replay duration at start-up', registers: [registry] }),
    journalSeq: new Gauge({ name: 'vaultmesh_journal_seq', help: 'Highest journal seq', registers: [registry] }),
    isLeader: new Gauge({ name: 'vaultmesh_leader', help: '1 while this center is the leader among the replicas of its log', registers: [registry] }),
    leaderChanges: new Counter({ name: 'vaultmesh_leader_changes_total', help: 'Times this center became or stopped being the leader', registers: [registry] }),
    tailLag: new Gauge({
      name: 'vaultmesh_tail_lag_seq',
      help: 'Entries committed to the log that this center has not applied yet',
      registers: [registry],
      async collect() {
        const lag = await tailLagSource.read?.();
        if (typeof lag === 'number') this.set(lag);
      },
    }),
    tailLagSource,
    snapshotPauseSeconds: new Histogram({ name: 'vaultmesh_snapshot_pause_seconds', help: 'Event-loop pause of serialising a state snapshot', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry] }),
    snapshotBytes: new Gauge({ name: 'vaultmesh_snapshot_bytes', help: 'Size of the last state snapshot written', registers: [registry] }),
  };
}
