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
import { createCenterKeyRing, notHeld } from './keys/center-key-ring.js';
import { createRotator } from './keys/rotate-center-key.js';
import { missedRotation } from '../protocol/center-key-rotation.js';
import { consoleLogger, type Logger } from '../lib/logger.js';
import { createApp } from './http/app.js';
import { limitedServerFactory, serverLimitsFromConfig } from './http/server-limits.js';
import type { CenterConfig } from './config.js';
import { createEventBus } from './http/event-bus.js';
import { applyEnvelope, createFleetState, type FleetState } from './fleet/fleet-state.js';
import { createJsonlStore, writtenJournals } from './store/jsonl-store.js';
import type { ChainSigner } from './center-key.js';
import { databaseUrl, redactedUrl } from './store/database-url.js';
import { createCommitFanout, perEntry, type Projection } from './store/commit-fanout.js';
import { offlineAfterMs, type StatusPolicy } from './fleet/node-status.js';
import { createOutageMonitor } from './fleet/outage-monitor.js';
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
import { createMaintenanceService } from './ops/maintenance-service.js';
import { isCovered, isHeldEnvelope, maintenanceSummary } from './ops/maintenance.js';
import { realTimers, type Timers } from '../lib/timers.js';
import { loadScheduleFile } from './ops/schedule.js';
import { adminSocketPath, listenAdminSocket } from './admin-socket.js';
import { soleLeader, whileLeader, type Leadership } from './leadership.js';
import { createTailLag, noTailLag } from './store/tail-lag.js';
import { VERSION } from '../lib/version.js';
import { SNAPSHOT_FILE } from './snapshot/snapshot-file.js';
import { loadSnapshot, type SnapshotLoad } from './snapshot/snapshot-load.js';
import { captureState, type SnapshotParts } from './snapshot/center-state.js';
import { createSnapshotter, type Snapshotter } from './snapshot/snapshotter.js';

/** Everything but the HTTP server: what `createApp` serves. */
export interface ComposedCenter {
  services: Services;
  replay: ReplayReport;
  /** Whether start-up used the state snapshot (and replayed only after its seq), or why not. */
  snapshot: SnapshotLoad;
  /** Takes the periodic state snapshots; null with --snapshot-off. */
  snapshotter: Snapshotter | null;
  /** The in-memory projections replay builds and a snapshot holds (for checks that they are whole). */
  snapshotParts: SnapshotParts;
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
  // With PostgreSQL the log and the heads are in the database: a missing key beside a stored log is refused as it is
  // beside journals, and --new-center-key trusts the database's last heads' signers (center-key.ts).
  let storedLog: string[] = [];
  let storedSigners: ChainSigner[] = [];
  // Loaded only for a PostgreSQL store: a JSONL center's start-up does not pay for `pg`.
  const pgm = config.store === 'postgres' ? await import('./store/postgres-center.js') : undefined;
  if (pgm && !existsSync(centerKeyPath(stateDir))) {
    const lastSeq = await pgm.storedLastSeq(databaseUrl(config));
    if (lastSeq > 0 && !config.newCenterKey) {
      throw new VaultMeshError(
        'CENTER_KEY_MISSING',
        `${centerKeyPath(stateDir)} is missing, but the database holds an envelope log (up to seq ${lastSeq}) written by a center whose key is not here. Restore the state dir from your backup (docs/OPERATIONS.md, "Backup and restore"), or check --state-dir / VAULTMESH_STATE_DIR; to replace the key on purpose, start once with --new-center-key`,
      );
    }
    if (lastSeq > 0) {
      storedLog = [`the database's envelope log (up to seq ${lastSeq})`];
      storedSigners = await pgm.storedHeadSigners(databaseUrl(config));
    }
  }
  const { key: startKey, previousKeys: recordedKeys } = openCenterKey({
    stateDir,
    logDir,
    journals: [...writtenJournals(logDir), ...storedLog],
    newCenterKey: config.newCenterKey,
    log,
    storedSigners,
  });
  if (recordedKeys.length) log.info(`trusting ${recordedKeys.length} replaced center key(s) from ${previousKeysPath(stateDir)} on the ledgers' old heads`);
  // Every signer below holds the ring's key, which follows `center_key` rotations (keys/center-key-ring.ts).
  const centerKeyRing = createCenterKeyRing({ stateDir, initial: startKey, log });
  const centerKey = centerKeyRing.key;
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
    pgm
      ? pgm.createPostgresStore({ url: databaseUrl(config), now, log, onCommit: fanout.commit, onFlush, timers })
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
          // A snapshot older than the new summary would not be used: take one once the current commit is through.
          onRotated: () => void timers.setTimeout(() => void snapshotter?.snapshot(), 0),
          onFlush,
        });
  if (config.store === 'postgres') log.info(`envelope log in PostgreSQL at ${redactedUrl(databaseUrl(config))}; every center on this database is a replica that writes`);
  // Since every replica writes, a standby has nothing to wait for: the flag is accepted and changes nothing.
  if (config.standby) log.warn('--standby (VAULTMESH_STANDBY) no longer changes anything: every center on a PostgreSQL database accepts writes (docs/SCALING.md)');
  // One leader among the replicas of a database runs the singletons and signs the heads, kept in the database
  // (postgres-heads.ts) so every replica serves the same chain; a JSONL center is its log dir's only center.
  const pgLeadership =
    pgm ? pgm.createPostgresLeadership({ url: databaseUrl(config), log, takeoverMs: config.leaderTakeoverSecs * 1000, timers }) : undefined;
  const leadership: Leadership = pgLeadership ?? soleLeader();
  const sharedHeads = pgLeadership && pgm ? pgm.createPostgresHeads(pgLeadership) : undefined;
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
      ...(sharedHeads ? { shared: sharedHeads, leads: () => leadership.isLeader } : {}),
      onError: (err) => log.error(`ledger (${name}): ${(err as Error).message}`),
      onHead: async (head) => {
        checkpoints[name].update(head);
        void witnessPusher?.push(name);
        // Written off the event loop; the next head waits for it, so the file follows the heads in order.
        await checkpoints[name].flush().catch((err) => log.error(`checkpoint (${name}): ${(err as Error).message}`));
      },
    });
  const ledgers = { scans: ledgerOf('scans'), commands: ledgerOf('commands') };

  // The ledgers rebuild themselves from the store in load() (checking the signed heads), so replay skips them.
  fanout.addProjection('ledgers', { replay: () => {}, commit: createLedgerObserver(ledgers) });
  // Heartbeat retention: old heartbeats are summarised, not replayed (heartbeat-segments.ts).
  // A restored snapshot already counts the summarised heartbeats (it was taken after the summary was applied).
  // PostgreSQL reads its summary at the start of replay, so it is looked up when replay ends.
  let summaryForReplay = true;
  fanout.addProjection('heartbeat-summary', heartbeatSummaryProjection(state, () => (summaryForReplay ? store.heartbeatSummary : undefined)));
  fanout.addProjection('fleet-state', perEntry(({ envelope }) => applyEnvelope(state, envelope)));
  fanout.addProjection('recent-ids', recentIdsProjection(recentIds));
  fanout.addProjection('sse', {
    replay: ({ envelope }) => bus.retain(envelope),
    commit: (batch) => {
      for (const { envelope } of batch) bus.publish(envelope);
    },
  });
  fanout.addProjection('event-log', perEntry(({ envelope }) => eventLog.add(envelope)));

  // Start-up from the state snapshot when it can stand for the log up to its seq (snapshot-load.ts); else in full.
  const snapshotSettings = { historySize: config.historySize, sseRetain: config.sseRetain, eventsWindow: config.eventsWindow, recentIds: RecentIds.DEFAULT_MAX };
  const snapshotFile = join(stateDir, SNAPSHOT_FILE);
  const parts: SnapshotParts = { state, recentIds, bus, eventLog, ledgers };
  const snapshotter = config.snapshotOff
    ? null
    : createSnapshotter({
        file: snapshotFile,
        everyEntries: config.snapshotEntries,
        everyMs: config.snapshotSecs * 1000,
        timers,
        now,
        centerVersion: VERSION,
        settings: snapshotSettings,
        capture: (yieldToLoop) => captureState(parts, yieldToLoop),
        log,
        onWritten: (s) => {
          log.info(`wrote the state snapshot at seq ${s.seq} (${(s.bytes / 2 ** 20).toFixed(1)} MiB): event loop held ${s.pauseMs.toFixed(0)} ms, written in ${s.totalMs.toFixed(0)} ms`);
          metrics.snapshotPauseSeconds.observe(s.pauseMs / 1000);
          metrics.snapshotBytes.set(s.bytes);
        },
      });
  if (snapshotter) fanout.addProjection('snapshot-mark', snapshotter.projection);
  let snapshot: SnapshotLoad;
  if (config.snapshotOff) snapshot = { used: false, reason: 'snapshots are off (--snapshot-off)' };
  else if (config.repair) snapshot = { used: false, reason: '--repair checks the whole log' };
  else snapshot = await loadSnapshot({ file: snapshotFile, store, expect: { centerVersion: VERSION, settings: snapshotSettings }, parts });
  if (snapshot.used) {
    summaryForReplay = false;
    snapshotter?.coveredBy(snapshot.seq, snapshot.lineSha256);
    log.info(`loaded the state snapshot at seq ${snapshot.seq} (${(snapshot.bytes / 2 ** 20).toFixed(1)} MiB) in ${snapshot.ms.toFixed(0)} ms; replaying the log after it`);
  } else if (snapshot.reason !== 'there is none' && !config.snapshotOff) {
    log.warn(`state snapshot ${snapshotFile} not used (${snapshot.reason}): replaying the whole log`);
  }
  const afterSeq = snapshot.used ? snapshot.seq : 0;

  // Reused read buffers: no projection keeps a replayed line past its visit (the snapshot mark copies its one).
  const replay = await store.replay(fanout.replay, { afterSeq, reuseBuffers: true });
  fanout.endReplay();
  metrics.replaySeconds.set(replay.durationMs / 1000);
  for (const t of replay.tornTails) log.warn(`torn last line (${t.bytes} bytes without a newline: an interrupted write) in ${t.file} moved to ${t.movedTo}; if this log was restored from a copy, compare it with the source`);
  for (const q of replay.quarantined) log.warn(`quarantined ${q.file}:${q.line} (${q.reason}) into ${q.movedTo}`);
  log.info(`replayed ${replay.envelopes} envelopes up to seq ${replay.lastSeq} in ${replay.durationMs.toFixed(0)} ms${afterSeq ? ` (after the state snapshot at seq ${afterSeq})` : ''}`);

  // A rotation journaled before a crash is completed now (the key file swap), before anything is signed; a center
  // that lacks the announced key does not start (it could sign nothing).
  const keyStatus = centerKeyRing.settle(state.centerKeys?.rotations ?? []);
  if (keyStatus.state !== 'ok') {
    await store.close();
    await leadership.close();
    throw notHeld(keyStatus, stateDir);
  }

  // The ledgers read the journals as left by replay (torn tails already set aside) and refuse to start on a log
  // shorter than its last signed head.
  try {
    const t0 = performance.now();
    for (const name of ['scans', 'commands'] as const) {
      const from = snapshot.used ? { ...snapshot.ledgers[name], afterSeq } : undefined;
      const source = await ledgers[name].load(from);
      if (from && source !== 'snapshot') log.warn(`ledger (${name}): its leaf cache does not give the snapshot's root; rehashed the whole journal`);
    }
    log.info(`ledgers loaded (${ledgers.scans.size} + ${ledgers.commands.size} leaves) in ${(performance.now() - t0).toFixed(0)} ms`);
    // Lines written while no head could be published (a crash right after an append) get a head now.
    await ledgers.scans.publishHead();
    await ledgers.commands.publishHead();
    checkpoints.scans.update(ledgers.scans.latestHead());
    checkpoints.commands.update(ledgers.commands.latestHead());
    await Promise.all([checkpoints.scans.flush(), checkpoints.commands.flush()]);
  } catch (err) {
    await store.close(); // replay opened the journals for appends: do not leave them open on a refused start
    await leadership.close();
    throw err;
  }

  const pipeline = createPipeline({ store, recentIds });
  const submit: Services['submit'] = async (draft, appendOpts) => {
    const end = metrics.journalAppendSeconds.startTimer();
    try {
      return await pipeline.submit(draft, appendOpts);
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
    centerKeyMissed: (ids) => missedRotation(state.centerKeys?.rotations ?? [], centerKey.keyId, ids, now()),
    inMaintenance: (node, nowMs) => isCovered(state, node, nowMs),
  };
  const cfAccess = cfAccessFromConfig(config) ?? null;
  const limits = abuseLimitsFromConfig(config, { timers });
  const apiTokenUsage = createApiTokenUsage({ file: join(stateDir, 'api-token-usage.json'), now, onError: (err) => log.warn(`API token usage file: ${(err as Error).message}`) });
  const commands = createCommandService({
    state,
    submit,
    ...(store.sync ? { sync: () => store.sync!() } : {}),
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
  // A command issued on another replica wakes the long-poll of its node here.
  fanout.addReactor('command-wake', commands);
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
  // `offline` and `rejoin` envelopes (outages.ts): the leader's job, like the attention monitor's transitions.
  const outages = createOutageMonitor({
    state,
    submit,
    now,
    thresholdMs: offlineAfterMs(statusPolicy),
    intervalMs: config.attentionCheckSecs * 1000,
    timers,
    onError: (err) => log.error(`outage monitor: ${(err as Error).message ?? err}`),
  });
  fanout.addReactor('outages', { onCommit: (batch) => leadership.isLeader && outages.onCommit(batch) });
  const webhooks = config.webhookUrls.length
    ? createWebhooks({
        urls: config.webhookUrls,
        secret: config.webhookSecret ?? loadOrCreateWebhookSecret(join(stateDir, 'webhook.secret'), () => newSecret('vmhook')),
        outboxFile: join(stateDir, 'webhooks-outbox.jsonl'),
        now,
        timers,
        maintenance: { isHeld: (env) => isHeldEnvelope(state, env), summary: (env) => maintenanceSummary(state, env) },
      })
    : null;
  // Deliveries are the leader's alone (every replica sees every commit): a follower's commits are not queued.
  // A rotation another replica announced: take its key (from cc-key.next.pem) or refuse to sign, loudly.
  fanout.addReactor('center-key', {
    onCommit: (batch) => {
      if (batch.some(({ envelope }) => envelope.kind === 'center_key')) centerKeyRing.settle(state.centerKeys?.rotations ?? []);
    },
  });
  if (webhooks) fanout.addReactor('webhooks', { onCommit: (batch) => leadership.isLeader && webhooks.onCommit(batch) });
  fanout.seal();
  const maintenance = createMaintenanceService({
    state,
    submit,
    syncLog: async () => {
      await store.sync?.();
    },
    now,
    timers,
    onError: (err) => log.error(`maintenance: ${(err as Error).message ?? err}`),
  });

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

  // On a quiet main thread heartbeats arrive one at a time, and waking the worker for each costs more than verifying
  // here (bench/fleet.mjs at 1×); once the thread is busier the worker takes them.
  const verifier = createVerifyPool({
    workers: verifyWorkerCount(config.verifyWorkers, availableParallelism()),
    inline: nodeCryptoBackend,
    log,
    nice: config.verifyWorkerNice,
    ...(config.verifyInlineBelow > 0 ? { quietInline: { below: config.verifyInlineBelow / 100 } } : {}),
  });
  metrics.verifyFrom(() => ({ ...verifier.stats(), workers: verifier.workers }));
  const services: Services = {
    config,
    state,
    bus,
    metrics,
    submit,
    replicated: store.enforcesClaims === true,
    claim: async (claims) => {
      if (store.enforcesClaims) await store.claim!(claims);
    },
    syncLog: async () => {
      await store.sync?.();
    },
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
    centerKeyRing,
    centerKeyRotator: createRotator({
      ring: centerKeyRing,
      history: () => state.centerKeys?.rotations ?? [],
      submit,
      syncLog: async () => void (await store.sync?.()),
      // A failed seal does not stop the rotation: the new key's next head still covers those leaves.
      sealLedgers: async () => {
        for (const name of ['scans', 'commands'] as const) await ledgers[name].publishHead().catch((err) => log.error(`ledger (${name}): ${(err as Error).message}`));
      },
      now,
    }),
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
    leadership,
    tailLag: pgLeadership
      ? createTailLag({
          readHead: async () => Number((await pgLeadership.query<{ last_seq: string }>('SELECT last_seq FROM log_head')).rows[0]?.last_seq ?? 0),
          applied: () => store.lastSeq,
        })
      : noTailLag,
    maintenance,
  };

  limits.start();
  apiTokenUsage.start();
  // The singletons run on the leader only, from when it leads until it stops leading (leadership.ts). The command
  // expiry sweep is one (each replica would journal the same expiry); every replica keeps answering long-polls,
  // which never hand out a command past its expires_at, swept or not.
  whileLeader(leadership, commands.expirySweep);
  if (orchestrator) whileLeader(leadership, orchestrator);
  whileLeader(leadership, attention);
  whileLeader(leadership, outages);
  if (webhooks) whileLeader(leadership, webhooks);
  // Windows end on time on the leader (the state already stops silencing at the end time on every replica).
  whileLeader(leadership, maintenance.timer);
  // Heartbeat retention in the database (the JSONL store prunes its own segments): the leader's job.
  const retention =
    pgm && config.heartbeatRetentionDays > 0
      ? pgm.createPostgresHeartbeatRetention({ url: databaseUrl(config), days: config.heartbeatRetentionDays, keepPerNode: config.historySize, nodes: () => state.nodes.keys(), now, log, timers })
      : undefined;
  if (retention) whileLeader(leadership, retention);
  // A new leader adopts the shared chain (checking it) and signs a head over what arrived since the last one.
  const signNow = () => {
    for (const name of ['scans', 'commands'] as const) ledgers[name].publishHead().catch((err) => log.error(`ledger (${name}): ${(err as Error).message}`));
  };
  leadership.onChange((leader) => {
    metrics.leaderChanges.inc();
    metrics.isLeader.set(leader ? 1 : 0);
    if (leader) signNow();
  });
  let adoptTimer: unknown;
  if (pgLeadership && pgm) {
    const adoptHeads = () => {
      for (const name of ['scans', 'commands'] as const) ledgers[name].sync().catch((err) => log.warn(`ledger (${name}): ${(err as Error).message}`));
    };
    // Followers adopt a new head as soon as the leader announces it (NOTIFY), not only on their next commit; and a
    // head that covered entries this replica had not applied yet when it came (just restarted, or behind) is not
    // left waiting for the next announcement: asked again every second.
    pgLeadership.listen(pgm.HEADS_CHANNEL, adoptHeads);
    adoptTimer = timers.setInterval(adoptHeads, 1000);
  }
  metrics.tailLagSource.read = () => services.tailLag.get();
  snapshotter?.start();
  leadership.start();
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
    snapshot,
    snapshotter,
    snapshotParts: parts,
    adminTokenFile: admin.file,
    release,
    close() {
      closing ??= (async () => {
        release();
        if (adoptTimer !== undefined) timers.clearInterval(adoptTimer);
        bus.close();
        attention.stop();
        outages.stop();
        await attention.idle();
        await outages.idle();
        await maintenance.timer.stop();
        await orchestrator?.idle();
        await webhooks?.stop();
        await retention?.stop();
        await store.close();
        // After the journal closed: the last snapshot covers every acknowledged entry, so the next start replays none.
        await snapshotter?.close();
        await verifier.close();
        limits.stop();
        apiTokenUsage.stop(); // flushes last-used times
        // The last heads while still leading (the lock is given up only after them).
        await ledgers.scans.flush().finally(() => ledgers.commands.flush());
        await ledgers.scans.close();
        await ledgers.commands.close();
        await leadership.close();
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
function heartbeatSummaryProjection(state: FleetState, summaryOf: () => HeartbeatSummary | undefined): Projection {
  const replayedUpTo = new Map<string, number>();
  let replayedTotalUpTo = 0;
  return {
    replay: ({ envelope }) => {
      const summary = summaryOf(); // PostgreSQL reads it at the start of replay
      if (!summary || envelope.kind !== 'heartbeat' || envelope.seq > summary.through_seq) return;
      replayedTotalUpTo++;
      if (envelope.node_id) replayedUpTo.set(envelope.node_id, (replayedUpTo.get(envelope.node_id) ?? 0) + 1);
    },
    replayed: () => {
      const summary = summaryOf();
      if (summary) applySummary(state, summary, replayedUpTo, replayedTotalUpTo);
    },
    commit: () => {},
  };
}
