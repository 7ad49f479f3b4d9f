/**
 * Assembles a running command center: state dir secrets, replay, journal, pipeline, HTTP server. `composeCenter`
 * builds the services (tests and benchmarks use it without a server); `startCenter` adds the server and returns
 * once it is listening; `close()` stops accepting, ends SSE streams, flushes the journal.
 */
import { createAdaptorServer, type ServerType } from '@hono/node-server';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { availableParallelism, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { KeyPair } from '../protocol/keys.js';
import { writeFileAtomicSync } from '../lib/atomic-file.js';
import { assertPrivateFile } from '../lib/key-file.js';
import { isHeld, tryLockDir, type DirLock } from '../lib/dir-lock.js';
import { VaultMeshError } from '../protocol/errors.js';
import { centerKeyPath, openCenterKey, previousKeysPath } from './center-key.js';
import { consoleLogger, type Logger } from '../lib/logger.js';
import { createApp } from './http/app.js';
import { limitedServerFactory, serverLimitsFromConfig } from './http/server-limits.js';
import type { CenterConfig } from './config.js';
import { createEventBus } from './http/event-bus.js';
import { applyEnvelope, createFleetState, type FleetState } from './fleet/fleet-state.js';
import { createJsonlStore, writtenJournals } from './store/jsonl-store.js';
import { createPostgresStore, storedLastSeq } from './store/postgres-store.js';
import { databaseUrl, redactedUrl } from './store/database-url.js';
import { createCommitFanout, perEntry, type Projection } from './store/commit-fanout.js';
import type { StatusPolicy } from './fleet/node-status.js';
import { createMetrics } from './http/metrics.js';
import { createVerifyPool, verifyWorkerCount } from './auth/verify-pool.js';
import { nodeCryptoBackend } from '../protocol/ed25519.js';
import { createMutex } from './store/mutex.js';
import { adminTokenAuthenticator } from './auth/operator-auth.js';
import { apiTokenAuthenticator, createApiTokenState, createApiTokenUsage } from './auth/api-tokens.js';
import { cfAccessFromConfig } from './auth/cf-access.js';
import { abuseLimitsFromConfig } from './http/rate-limit.js';
import { createSessionStore } from './console/session.js';
import { createPipeline, dedupKey, RecentIds, recentIdsProjection } from './store/pipeline.js';
import { createLedgerObserver, createNamedLedger } from './ledger/ledger.js';
import { createCheckpointWriter } from './ledger/checkpoints.js';
import { createWitnessBook } from './ledger/witnesses.js';
import { createWitnessPusher, parseWitnessList, type WitnessPusher } from './ledger/witness-push.js';
import { defaultLedgerOrigin } from '../protocol/ledger-checkpoints.js';
import { createReplayGuard } from './auth/replay-guard.js';
import type { ReplayReport } from './store/envelope-store.js';
import { applySummary, summarize as summarizeHeartbeats, type HeartbeatSummary } from './store/heartbeat-segments.js';
import { hashSecret, newSecret } from './auth/secrets.js';
import type { Services } from './services.js';
import { createCommandService } from './commands/command-store.js';
import { loadPolicyFile } from './commands/command-policy.js';
import { createEventLog } from './store/event-log.js';
import { createAttentionMonitor } from './ops/attention-monitor.js';
import { createWebhooks, loadOrCreateWebhookSecret } from './ops/webhooks.js';
import { createOrchestrator } from './ops/orchestrator.js';
import { realTimers, type Timers } from '../lib/timers.js';
import { loadScheduleFile } from './ops/schedule.js';
import { adminSocketPath, listenAdminSocket } from './admin-socket.js';

/** Everything but the HTTP server: what `createApp` serves. */
export interface ComposedCenter {
  services: Services;
  replay: ReplayReport;
  adminTokenFile: string;
  /** Stops issuing and answers held long-polls (the first step of a shutdown, before the server drains). */
  release(): void;
  /** Stops the background jobs and flushes the journal, the ledgers and token usage. */
  close(): Promise<void>;
}

export interface RunningCenter extends ComposedCenter {
  url: string;
  port: number;
  /** The local admin socket's path; null when it is off or could not be offered. */
  adminSocket: string | null;
}

export function adminTokenPath(stateDir: string): string {
  return join(stateDir, 'admin.token');
}

/** Reads the admin token, creating it (0600) on first start. Only its hash stays in memory. */
export function loadOrCreateAdminToken(stateDir: string, log: Logger): { hash: string; file: string } {
  const file = adminTokenPath(stateDir);
  if (!existsSync(file)) {
    writeFileAtomicSync(file, `${newSecret('vmadmin')}\n`, 0o600);
    log.info(`created admin token in ${file} (mode 0600); the vaultmesh CLI reads it from there or from VAULTMESH_TOKEN`);
  }
  assertPrivateFile(file);
  return { hash: hashSecret(readFileSync(file, 'utf8').trim()), file };
}

export { centerKeyPath } from './center-key.js';

export interface CenterOptions {
  log?: Logger;
  now?: () => Date;
  /** The timers of the background jobs: command expiry and long-polls, orchestrator, attention, webhooks, ledger heads, rate-limit sweeps. */
  timers?: Timers;
}

/**
 * Builds a center in one pass, in data-flow order: projections, replay, journal, submit, the services that submit,
 * the sealed commit fan-out, then the `Services` record. Background jobs are running when it returns.
 */
export async function composeCenter(config: CenterConfig, opts: CenterOptions = {}): Promise<ComposedCenter> {
  const logDir = resolve(config.logDir);
  const stateDir = resolve(config.stateDir);
  // The lock files live in the dirs; the store tightens an existing log dir's mode later (prepareLogDir).
  mkdirSync(logDir, { recursive: true, mode: 0o750 });
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  // Before anything reads or writes either dir: replay, torn-tail moves, heads, the key and the token.
  const locks = lockCenterDirs([
    { what: 'log dir', shown: config.logDir, path: logDir },
    { what: 'state dir', shown: config.stateDir, path: stateDir },
  ]);
  let center: ComposedCenter;
  try {
    center = await composeLocked(config, opts, logDir, stateDir);
  } catch (err) {
    locks.release();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    ...center,
    close() {
      closing ??= center.close().finally(() => locks.release());
      return closing;
    },
  };
}

/**
 * Takes the flock(2) lock of each directory (lib/dir-lock.ts) or throws CENTER_LOCKED naming the holder's pid. The
 * locks live as long as this process holds them, so a center killed with -9 leaves none behind.
 */
export function lockCenterDirs(dirs: ReadonlyArray<{ what: string; shown: string; path: string }>): { release(): void } {
  const held: DirLock[] = [];
  const release = () => {
    for (const l of held.splice(0).reverse()) l.release();
  };
  const seen = new Set<string>();
  for (const d of dirs) {
    if (seen.has(d.path)) continue; // --log-dir and --state-dir may be one directory: one lock
    seen.add(d.path);
    let lock;
    try {
      lock = tryLockDir(d.path);
    } catch (err) {
      release();
      throw err;
    }
    if (isHeld(lock)) {
      release();
      const by = lock.heldBy === undefined ? 'another center' : `another center (pid ${lock.heldBy})`;
      throw new VaultMeshError('CENTER_LOCKED', `the ${d.what} ${d.shown} is in use by ${by}; stop it first (or give this one its own --log-dir and --state-dir)`);
    }
    held.push(lock);
  }
  return { release };
}

async function composeLocked(config: CenterConfig, opts: CenterOptions, logDir: string, stateDir: string): Promise<ComposedCenter> {
  const log = opts.log ?? consoleLogger;
  const now = opts.now ?? (() => new Date());
  const timers = opts.timers ?? realTimers;
  chmodSync(stateDir, 0o700);

  // The key first: when it is missing beside existing journals, start-up refuses before writing a token.
  // The key check looks at the log dir's journals; a log in PostgreSQL is asked too, before a key could be made.
  if (config.store === 'postgres' && !config.newCenterKey && !existsSync(centerKeyPath(stateDir))) {
    const lastSeq = await storedLastSeq(databaseUrl(config));
    if (lastSeq > 0) {
      throw new VaultMeshError(
        'CENTER_KEY_MISSING',
        `${centerKeyPath(stateDir)} is missing, but the database holds an envelope log (up to seq ${lastSeq}) written by a center whose key is not here. Restore the state dir from your backup (docs/OPERATIONS.md, "Backup and restore"), or check --state-dir / VAULTMESH_STATE_DIR`,
      );
    }
  }
  const { key: centerKey, previousKeys: recordedKeys } = openCenterKey({ stateDir, logDir, journals: writtenJournals(logDir), newCenterKey: config.newCenterKey, log });
  if (recordedKeys.length) log.info(`trusting ${recordedKeys.length} replaced center key(s) from ${previousKeysPath(stateDir)} on the ledgers' old heads`);
  const admin = loadOrCreateAdminToken(stateDir, log);

  const policy = loadPolicyFile(config.policy);
  const schedule = config.orchestratorTickSecs > 0 ? loadScheduleFile(config.schedule) : undefined;
  const metrics = createMetrics();
  const state = createFleetState({ historySize: config.historySize });
  const bus = createEventBus({ retain: config.sseRetain, defaultMaxQueue: config.sseMaxQueue });
  const recentIds = new RecentIds();
  // Every consumer of stored entries, in the order they run (commit-fanout.ts), fed by the store: replay rebuilds
  // the projections, live commits feed them and then the reactors.
  const fanout = createCommitFanout({ log });
  // The storage seam (envelope-store.ts): the only way in and out of the journals. JSONL in the log dir, or
  // PostgreSQL (postgres-store.ts); the ledgers' heads and the locks stay in the log and state dirs either way.
  const onFlush = ({ entries, fsyncMs }: { entries: number; fsyncMs: number }) => {
    metrics.journalBatchSize.observe(entries);
    metrics.journalFsyncSeconds.observe(fsyncMs / 1000);
  };
  const store =
    config.store === 'postgres'
      ? createPostgresStore({ url: databaseUrl(config), now, log, onCommit: fanout.commit, onFlush, standby: config.standby, timers })
      : createJsonlStore({
          dir: logDir,
          fsync: config.fsync,
          repair: config.repair,
          now,
          log,
          onCommit: fanout.commit,
          heartbeatSegmentBytes: config.heartbeatSegmentBytes,
          heartbeatRetentionDays: config.heartbeatRetentionDays,
          summarizeHeartbeats: (throughSeq) => summarizeHeartbeats(state, throughSeq),
          onFlush,
        });
  if (config.store === 'postgres') log.info(`envelope log in PostgreSQL at ${redactedUrl(databaseUrl(config))}`);
  const eventLog = createEventLog({ store, window: config.eventsWindow, lastSeq: () => state.lastSeq });
  // After a key rotation the last heads were signed by a previous key: accept those the operator names.
  const trustedKeys = [centerKey.publicKeyHex, ...config.previousKeys, ...recordedKeys];
  const origin = config.ledgerOrigin ?? defaultLedgerOrigin(hostname());
  // Set once the witness book exists (below); heads signed before that are pushed at start-up.
  let witnessPusher: WitnessPusher | undefined;
  const checkpoints = { scans: createCheckpointWriter({ dir: logDir, log: 'scans', origin, key: centerKey }), commands: createCheckpointWriter({ dir: logDir, log: 'commands', origin, key: centerKey }) };
  const ledgerOf = (name: 'scans' | 'commands') =>
    createNamedLedger(name, {
      dir: logDir,
      store,
      key: centerKey,
      now,
      timers,
      trustedKeys,
      minHeadIntervalMs: config.ledgerHeadSecs * 1000,
      onError: (err) => log.error(`ledger (${name}): ${(err as Error).message}`),
      onHead: (head) => {
        checkpoints[name].update(head);
        void witnessPusher?.push(name);
      },
    });
  const ledgers = { scans: ledgerOf('scans'), commands: ledgerOf('commands') };

  // The ledgers rebuild themselves from the store in load() (checking the signed heads), so replay skips them.
  fanout.addProjection('ledgers', { replay: () => {}, commit: createLedgerObserver(ledgers) });
  // Heartbeat retention: old heartbeats are summarised, not replayed (heartbeat-segments.ts).
  fanout.addProjection('heartbeat-summary', heartbeatSummaryProjection(state, store.heartbeatSummary));
  fanout.addProjection('fleet-state', perEntry(({ envelope }) => applyEnvelope(state, envelope)));
  fanout.addProjection('recent-ids', recentIdsProjection(recentIds));
  fanout.addProjection('sse', {
    replay: ({ envelope }) => bus.retain(envelope),
    commit: (batch) => {
      for (const { envelope } of batch) bus.publish(envelope);
    },
  });
  fanout.addProjection('event-log', perEntry(({ envelope }) => eventLog.add(envelope)));

  const replay = await store.replay(fanout.replay);
  fanout.endReplay();
  metrics.replaySeconds.set(replay.durationMs / 1000);
  for (const t of replay.tornTails) log.warn(`torn last line (${t.bytes} bytes without a newline: an interrupted write) in ${t.file} moved to ${t.movedTo}; if this log was restored from a copy, compare it with the source`);
  for (const q of replay.quarantined) log.warn(`quarantined ${q.file}:${q.line} (${q.reason}) into ${q.movedTo}`);
  log.info(`replayed ${replay.envelopes} envelopes up to seq ${replay.lastSeq} in ${replay.durationMs.toFixed(0)} ms`);

  // The ledgers read the journals as left by replay (torn tails already set aside) and refuse to start on a log
  // shorter than its last signed head.
  try {
    await ledgers.scans.load();
    await ledgers.commands.load();
    // Lines written while no head could be published (a crash right after an append) get a head now.
    await ledgers.scans.publishHead();
    await ledgers.commands.publishHead();
    checkpoints.scans.update(ledgers.scans.latestHead());
    checkpoints.commands.update(ledgers.commands.latestHead());
  } catch (err) {
    await store.close(); // replay opened the journals for appends: do not leave them open on a refused start
    throw err;
  }

  const pipeline = createPipeline({ store, recentIds });
  const submit: Services['submit'] = async (draft) => {
    const end = metrics.journalAppendSeconds.startTimer();
    try {
      return await pipeline.submit(draft);
    } finally {
      end();
    }
  };

  const statusPolicy: StatusPolicy = {
    heartbeatIntervalMs: config.heartbeatSecs * 1000,
    staleAttnAfter: config.staleAttnAfter,
    staleCritAfter: config.staleCritAfter,
    diskAttnPct: config.diskAttnPct,
    diskCritPct: config.diskCritPct,
    memAttnPct: config.memAttnPct,
    memCritPct: config.memCritPct,
    ...(config.expectedAgentVersion ? { expectedAgentVersion: config.expectedAgentVersion } : {}),
  };
  const cfAccess = cfAccessFromConfig(config) ?? null;
  const limits = abuseLimitsFromConfig(config, { timers });
  const apiTokenUsage = createApiTokenUsage({ file: join(stateDir, 'api-token-usage.json'), now, onError: (err) => log.warn(`API token usage file: ${(err as Error).message}`) });
  const commands = createCommandService({
    state,
    submit,
    centerKey,
    policy,
    now,
    redeliverMs: config.commandRedeliverSecs * 1000,
    timers,
    onError: (err) => log.error(`command expiry sweep failed: ${(err as Error).message}`),
  });
  // Scheduled scans, issued through the command service (so through its policy check); last runs come from replay.
  const orchestrator = schedule
    ? createOrchestrator({ state, commands, schedule, scheduleFile: config.schedule ?? 'systemd/schedule.json', statusPolicy, now, tickMs: config.orchestratorTickSecs * 1000, log, timers })
    : null;

  // Reactors: live commits only, after the projections; they may submit.
  const attention = createAttentionMonitor({
    state,
    submit,
    now,
    policy: statusPolicy,
    intervalMs: config.attentionCheckSecs * 1000,
    timers,
    onError: (err) => log.error(`attention monitor: ${(err as Error).message ?? err}`),
  });
  fanout.addReactor('attention', attention);
  const webhooks = config.webhookUrls.length
    ? createWebhooks({
        urls: config.webhookUrls,
        secret: config.webhookSecret ?? loadOrCreateWebhookSecret(join(stateDir, 'webhook.secret'), () => newSecret('vmhook')),
        outboxFile: join(stateDir, 'webhooks-outbox.jsonl'),
        now,
        timers,
      })
    : null;
  if (webhooks) fanout.addReactor('webhooks', webhooks);
  fanout.seal();

  const witnesses = createWitnessBook({
    ledgers,
    checkpoints,
    nodeKey: (id) => {
      const n = state.nodes.get(id);
      return n?.enrollment === 'approved' ? n.public_key : undefined;
    },
    keep: config.ledgerCosignatures,
    now,
    maxSkewSecs: config.maxSkewSecs,
  });
  const externalWitnesses = parseWitnessList(config.ledgerWitnesses);
  if (externalWitnesses.length) {
    witnessPusher = createWitnessPusher({ witnesses: externalWitnesses, ledgers, checkpoints, book: witnesses, onError: (err) => log.error(`ledger witness: ${err.message}`) });
    void witnessPusher.push('scans');
    void witnessPusher.push('commands');
  }

  const verifier = createVerifyPool({ workers: verifyWorkerCount(config.verifyWorkers, availableParallelism()), inline: nodeCryptoBackend, log });
  metrics.verifyFrom(() => ({ ...verifier.stats(), workers: verifier.workers }));
  const services: Services = {
    config,
    state,
    bus,
    metrics,
    submit,
    // Bearer credentials first (admin, then scoped tokens), then the Access assertion, then the console cookie.
    authenticators: {
      bearer: [adminTokenAuthenticator(admin.hash), apiTokenAuthenticator({ state: () => (state.apiTokens ??= createApiTokenState()), usage: apiTokenUsage, now })],
      access: cfAccess ?? null,
      sessions: createSessionStore({ now: () => now().getTime() }),
    },
    apiTokenUsage,
    limits,
    replayGuard: createReplayGuard({ windowMs: config.maxSkewSecs * 1000 }),
    verifier,
    centerKey: centerKey as KeyPair,
    now,
    startedAt: now(),
    enrollLock: createMutex(),
    statusPolicy,
    eventLog,
    seenEnvelopeId: (author, id) => recentIds.get(dedupKey(author, id)),
    ledgers,
    checkpoints,
    witnesses,
    commands,
    orchestrator,
    attention,
    webhooks,
  };

  limits.start();
  apiTokenUsage.start();
  commands.start();
  orchestrator?.start();
  attention.start();
  webhooks?.start();
  // A PostgreSQL standby starts applying the leader's entries only now, with every consumer in place.
  store.start?.();

  const release = () => {
    orchestrator?.stop();
    commands.stop(); // releases held long-polls
  };
  let closing: Promise<void> | undefined;
  return {
    services,
    replay,
    adminTokenFile: admin.file,
    release,
    close() {
      closing ??= (async () => {
        release();
        bus.close();
        attention.stop();
        await attention.idle();
        await orchestrator?.idle();
        await webhooks?.stop();
        await store.close();
        await verifier.close();
        limits.stop();
        apiTokenUsage.stop(); // flushes last-used times
        await ledgers.scans.flush();
        await ledgers.commands.flush();
        await ledgers.scans.close();
        await ledgers.commands.close();
      })();
      return closing;
    },
  };
}

export async function startCenter(config: CenterConfig, opts: CenterOptions & { keepaliveMs?: number; streamCheckMs?: number } = {}): Promise<RunningCenter> {
  const center = await composeCenter(config, opts);
  const { services } = center;
  const app = createApp(services, { ...(opts.keepaliveMs !== undefined ? { keepaliveMs: opts.keepaliveMs } : {}), ...(opts.streamCheckMs !== undefined ? { streamCheckMs: opts.streamCheckMs } : {}) });
  const server: ServerType = createAdaptorServer({ fetch: app.fetch, hostname: config.host, port: config.port, createServer: limitedServerFactory(serverLimitsFromConfig(config)) });
  try {
    await new Promise<void>((res, rej) => {
      server.once('error', rej);
      server.listen(config.port, config.host, () => res());
    });
  } catch (err) {
    await center.close(); // e.g. the port is taken: stop the jobs and flush what replay and start-up wrote
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  // The same app on <state-dir>/admin.sock for the CLI on this host (admin-socket.ts).
  const adminSocket = config.adminSocketOff ? undefined : await listenAdminSocket({ path: adminSocketPath(resolve(config.stateDir)), fetch: app.fetch, log: opts.log ?? consoleLogger });
  const url = `http://${host}:${port}`;

  let closing: Promise<void> | undefined;
  return {
    ...center,
    url,
    port,
    adminSocket: adminSocket?.path ?? null,
    close() {
      closing ??= (async () => {
        center.release();
        const socketClosed = adminSocket?.close();
        const closed = new Promise<void>((res) => server.close(() => res()));
        services.bus.close(); // ends every SSE stream so their connections can finish
        // server.close() stops new connections, but keep-alive clients would go on sending on open ones: close each
        // connection as soon as its in-flight request is answered, so shutdown takes one request, not 3 s.
        const idle = () => (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
        idle();
        const sweepIdle = setInterval(idle, 20);
        const force = setTimeout(() => (server as { closeAllConnections?: () => void }).closeAllConnections?.(), 3000);
        await closed;
        clearInterval(sweepIdle);
        clearTimeout(force);
        await socketClosed;
        await center.close();
      })();
      return closing;
    },
  };
}

/**
 * Replay bookkeeping for heartbeat retention: heartbeats up to the summary's `through_seq` that are still replayed
 * (from the newest closed segment) are already counted in the summary, so they are counted once here and the
 * summary is applied net of them when replay ends. Live heartbeats are counted by the fleet state itself.
 */
function heartbeatSummaryProjection(state: FleetState, summary: HeartbeatSummary | undefined): Projection {
  const replayedUpTo = new Map<string, number>();
  let replayedTotalUpTo = 0;
  return {
    replay: ({ envelope }) => {
      if (!summary || envelope.kind !== 'heartbeat' || envelope.seq > summary.through_seq) return;
      replayedTotalUpTo++;
      if (envelope.node_id) replayedUpTo.set(envelope.node_id, (replayedUpTo.get(envelope.node_id) ?? 0) + 1);
    },
    replayed: () => {
      if (summary) applySummary(state, summary, replayedUpTo, replayedTotalUpTo);
    },
    commit: () => {},
  };
}
