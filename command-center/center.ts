/**
 * Assembles a running command center: state dir secrets, replay, journal, pipeline, HTTP server. `startCenter`
 * returns once it is listening; `close()` stops accepting, ends SSE streams, flushes the journal.
 */
import { createAdaptorServer, type ServerType } from '@hono/node-server';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import type { KeyPair } from '../protocol/keys.js';
import { writeFileAtomicSync } from '../lib/atomic-file.js';
import { assertPrivateFile, loadOrCreateKeyFile } from '../lib/key-file.js';
import { consoleLogger, type Logger } from '../lib/logger.js';
import { createApp } from './app.js';
import type { CenterConfig } from './config.js';
import { createEventBus } from './event-bus.js';
import { applyEnvelope, createFleetState } from './fleet-state.js';
import { openJournal, type Journal } from './journal.js';
import { createMetrics } from './metrics.js';
import { createMutex } from './mutex.js';
import { adminTokenAuthenticator } from './operator-auth.js';
import { apiTokenAuthenticator, createApiTokenState, createApiTokenUsage } from './api-tokens.js';
import { cfAccessFromConfig } from './cf-access.js';
import { abuseLimitsFromConfig } from './rate-limit.js';
import { createSessionStore, sessionAuthenticator } from './console/session.js';
import { createPipeline, dedupKey, RecentIds } from './pipeline.js';
import { createLedgerObserver, createNamedLedger } from './ledger.js';
import { createReplayGuard } from './replay-guard.js';
import { journalPaths, replayJournals, type ReplayReport } from './replay.js';
import { applySummary, listSegments, pruneSegments, readSummary, segmentsToReplay, summarize as summarizeHeartbeats, writeSummary } from './heartbeat-segments.js';
import { hashSecret, newSecret } from './secrets.js';
import type { Services } from './services.js';
import { createCommandService } from './command-store.js';
import { loadPolicyFile } from './command-policy.js';
import { createEventLog } from './event-log.js';
import { createAttentionMonitor, type AttentionMonitor } from './attention-monitor.js';
import { createWebhooks, loadOrCreateWebhookSecret, type Webhooks } from './webhooks.js';
import { createOrchestrator, type Orchestrator } from './orchestrator.js';
import { defaultSchedulePath, loadScheduleFile } from './schedule.js';

export interface RunningCenter {
  services: Services;
  url: string;
  port: number;
  replay: ReplayReport;
  adminTokenFile: string;
  close(): Promise<void>;
}

export function adminTokenPath(stateDir: string): string {
  return join(stateDir, 'admin.token');
}

export function centerKeyPath(stateDir: string): string {
  return join(stateDir, 'cc-key.pem');
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

export async function startCenter(config: CenterConfig, opts: { log?: Logger; now?: () => Date; keepaliveMs?: number } = {}): Promise<RunningCenter> {
  const log = opts.log ?? consoleLogger;
  const now = opts.now ?? (() => new Date());
  const logDir = resolve(config.logDir);
  const stateDir = resolve(config.stateDir);
  mkdirSync(logDir, { recursive: true, mode: 0o750 });
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  chmodSync(stateDir, 0o700);

  const admin = loadOrCreateAdminToken(stateDir, log);
  const { key: centerKey, created } = loadOrCreateKeyFile(centerKeyPath(stateDir));
  if (created) log.info(`created command-center key ${centerKey.keyId} in ${centerKeyPath(stateDir)}`);

  const policy = loadPolicyFile(config.policy);
  const schedulePath = config.orchestratorTickSecs > 0 ? (config.schedule ?? defaultSchedulePath()) : undefined;
  const schedule = schedulePath ? loadScheduleFile(schedulePath) : undefined;
  const metrics = createMetrics();
  const state = createFleetState({ historySize: config.historySize });
  const bus = createEventBus({ retain: config.sseRetain, defaultMaxQueue: config.sseMaxQueue });
  const recentIds = new RecentIds();
  const eventLog = createEventLog({ dir: logDir, window: config.eventsWindow, lastSeq: () => state.lastSeq });
  let attention: AttentionMonitor | undefined;
  let webhooks: Webhooks | undefined;

  // Heartbeat retention: old heartbeats are summarised, not replayed (heartbeat-segments.ts).
  const hbSummary = readSummary(logDir);
  const hbSegments = segmentsToReplay(listSegments(logDir), hbSummary);
  const replayedUpTo = new Map<string, number>();
  let replayedTotalUpTo = 0;
  const replay = await replayJournals({
    dir: logDir,
    files: [...hbSegments.map((s) => s.path), ...journalPaths(logDir)],
    repair: config.repair,
    now,
    visit: ({ envelope }) => {
      if (hbSummary && envelope.kind === 'heartbeat' && envelope.seq <= hbSummary.through_seq) {
        replayedTotalUpTo++;
        if (envelope.node_id) replayedUpTo.set(envelope.node_id, (replayedUpTo.get(envelope.node_id) ?? 0) + 1);
      }
      applyEnvelope(state, envelope);
      recentIds.add(dedupKey(envelope.author, envelope.id), envelope.seq);
      bus.retain(envelope);
      eventLog.add(envelope);
    },
  });
  if (hbSummary) applySummary(state, hbSummary, replayedUpTo, replayedTotalUpTo);
  metrics.replaySeconds.set(replay.durationMs / 1000);
  for (const t of replay.tornTails) log.warn(`torn last line (${t.bytes} bytes without a newline: an interrupted write) in ${t.file} moved to ${t.movedTo}; if this log was restored from a copy, compare it with the source`);
  for (const q of replay.quarantined) log.warn(`quarantined ${q.file}:${q.line} (${q.reason}) into ${q.movedTo}`);
  log.info(`replayed ${replay.envelopes} envelopes up to seq ${replay.lastSeq} in ${replay.durationMs.toFixed(0)} ms`);

  let journal: Journal | undefined;
  // The ledgers read the journals as left by replay (torn tails already set aside) and refuse to start on a log
  // shorter than its last signed head.
  // After a key rotation the last heads were signed by a previous key: accept those the operator names.
  const trustedKeys = [centerKey.publicKeyHex, ...config.previousKeys];
  const ledgers = {
    scans: createNamedLedger('scans', { dir: logDir, key: centerKey, now, trustedKeys, minHeadIntervalMs: config.ledgerHeadSecs * 1000, onError: (err) => log.error(`ledger (scans): ${(err as Error).message}`) }),
    commands: createNamedLedger('commands', { dir: logDir, key: centerKey, now, trustedKeys, minHeadIntervalMs: config.ledgerHeadSecs * 1000, onError: (err) => log.error(`ledger (commands): ${(err as Error).message}`) }),
  };
  await ledgers.scans.load();
  await ledgers.commands.load();
  // Lines written while no head could be published (a crash right after an append) get a head now.
  await ledgers.scans.publishHead();
  await ledgers.commands.publishHead();
  const pipeline = createPipeline({ journal: () => journal!, state, bus, recentIds, observers: [createLedgerObserver(ledgers)] });
  journal = await openJournal({
    dir: logDir,
    fsync: config.fsync,
    lastSeq: replay.lastSeq,
    now,
    log,
    onCommit: (batch) => {
      pipeline.onCommit(batch);
      for (const { envelope } of batch) eventLog.add(envelope);
      attention?.onCommit(batch);
      webhooks?.onCommit(batch);
    },
    rotateHeartbeats: {
      maxBytes: config.heartbeatSegmentBytes,
      onRotate: (segment) => {
        writeSummary(logDir, summarizeHeartbeats(state, segment.lastSeq));
        log.info(`rotated heartbeats into ${segment.path}`);
        if (config.heartbeatRetentionDays > 0) {
          for (const p of pruneSegments(logDir, config.heartbeatRetentionDays * 86_400_000, now().getTime())) log.info(`retention: deleted ${p}`);
        }
      },
    },
    onFlush: ({ entries, fsyncMs }) => {
      metrics.journalBatchSize.observe(entries);
      metrics.journalFsyncSeconds.observe(fsyncMs / 1000);
    },
  });

  const cfAccess = cfAccessFromConfig(config);
  const limits = abuseLimitsFromConfig(config);
  limits.start();
  const apiTokenUsage = createApiTokenUsage({ file: join(stateDir, 'api-token-usage.json'), now, onError: (err) => log.warn(`API token usage file: ${(err as Error).message}`) });
  apiTokenUsage.start();

  const services: Services = {
    config,
    state,
    bus,
    metrics,
    submit: async (draft) => {
      const end = metrics.journalAppendSeconds.startTimer();
      try {
        return await pipeline.submit(draft);
      } finally {
        end();
      }
    },
    // Explicit Bearer credentials first, then the ambient Access assertion, then the console cookie.
    authenticators: [
      adminTokenAuthenticator(admin.hash),
      apiTokenAuthenticator({ state: () => (state.apiTokens ??= createApiTokenState()), usage: apiTokenUsage, now }),
      ...(cfAccess ? [cfAccess.authenticator] : []),
      sessionAuthenticator(createSessionStore({ now: () => now().getTime() })),
    ],
    apiTokenUsage,
    ...(cfAccess ? { cfAccess } : {}),
    limits,
    replayGuard: createReplayGuard({ windowMs: config.maxSkewSecs * 1000 }),
    centerKey: centerKey as KeyPair,
    now,
    startedAt: now(),
    enrollLock: createMutex(),
    statusPolicy: {
      heartbeatIntervalMs: config.heartbeatSecs * 1000,
      staleAttnAfter: config.staleAttnAfter,
      staleCritAfter: config.staleCritAfter,
      diskAttnPct: config.diskAttnPct,
      diskCritPct: config.diskCritPct,
      memAttnPct: config.memAttnPct,
      memCritPct: config.memCritPct,
      ...(config.expectedAgentVersion ? { expectedAgentVersion: config.expectedAgentVersion } : {}),
    },
    eventLog,
    seenEnvelopeId: (author, id) => recentIds.get(dedupKey(author, id)),
    ledgers,
  };

  services.commands = createCommandService({
    state,
    submit: services.submit,
    centerKey,
    policy,
    now,
    redeliverMs: config.commandRedeliverSecs * 1000,
    onError: (err) => log.error(`command expiry sweep failed: ${(err as Error).message}`),
  });
  services.commands.start();

  // Scheduled scans, issued through services.commands (so through its policy check); last runs come from replay.
  let orchestrator: Orchestrator | undefined;
  if (schedule) {
    orchestrator = createOrchestrator({
      state,
      commands: services.commands,
      schedule,
      ...(schedulePath ? { scheduleFile: schedulePath } : {}),
      statusPolicy: services.statusPolicy,
      now,
      tickMs: config.orchestratorTickSecs * 1000,
      log,
    });
    services.orchestrator = orchestrator;
    orchestrator.start();
  }

  attention = createAttentionMonitor({
    state,
    submit: services.submit,
    now,
    policy: services.statusPolicy,
    intervalMs: config.attentionCheckSecs * 1000,
    onError: (err) => log.error(`attention monitor: ${(err as Error).message ?? err}`),
  });
  services.attention = attention;
  attention.start();
  if (config.webhookUrls.length) {
    webhooks = createWebhooks({
      urls: config.webhookUrls,
      secret: config.webhookSecret ?? loadOrCreateWebhookSecret(join(stateDir, 'webhook.secret'), () => newSecret('vmhook')),
      outboxFile: join(stateDir, 'webhooks-outbox.jsonl'),
      now,
    });
    services.webhooks = webhooks;
    webhooks.start();
  }

  const app = createApp(services, opts.keepaliveMs !== undefined ? { keepaliveMs: opts.keepaliveMs } : {});
  const server: ServerType = createAdaptorServer({ fetch: app.fetch, hostname: config.host, port: config.port });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(config.port, config.host, () => res());
  });
  const port = (server.address() as AddressInfo).port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;

  let closing: Promise<void> | undefined;
  return {
    services,
    url,
    port,
    replay,
    adminTokenFile: admin.file,
    close() {
      closing ??= (async () => {
        orchestrator?.stop();
        services.commands?.stop(); // releases held long-polls
        const closed = new Promise<void>((res) => server.close(() => res()));
        bus.close(); // ends every SSE stream so their connections can finish
        // server.close() stops new connections, but keep-alive clients would go on sending on open ones: close each
        // connection as soon as its in-flight request is answered, so shutdown takes one request, not 3 s.
        const idle = () => (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
        idle();
        const sweepIdle = setInterval(idle, 20);
        const force = setTimeout(() => (server as { closeAllConnections?: () => void }).closeAllConnections?.(), 3000);
        await closed;
        clearInterval(sweepIdle);
        clearTimeout(force);
        attention!.stop();
        await attention!.idle();
        await orchestrator?.idle();
        await webhooks?.stop();
        await journal!.close();
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
