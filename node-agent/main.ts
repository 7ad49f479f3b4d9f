#!/usr/bin/env node
/** `vaultmesh-agent`: the node daemon (outbound-only). */
import { cac } from 'cac';
import { isVaultMeshError, VaultMeshError } from '../protocol/errors.js';
import { createKeyRotator, liveKey } from './key-rotation.js';
import { readEnvFile } from './env-file.js';
import { resolveAgentConfig } from './config.js';
import { lockStateDir, openAgentState } from './agent-state.js';
import { createSdNotifier } from '../lib/sd-notify.js';
import { createCcClient } from './cc-client.js';
import { runCycle } from './agent.js';
import { createLedgerWitness } from './ledger-witness.js';
import { createRotationLearner } from './center-key-rotation.js';
import { VERSION } from '../lib/version.js';
import { getGlobalDispatcher } from 'undici';
import { setupCommandRunner } from './command-setup.js';
import { join } from 'node:path';
import { backoffMs, createOutboxSender, openOutbox } from './outbox.js';
import type { CcClient } from './cc-client.js';

const log = (msg: string) => console.log(`${new Date().toISOString()} ${msg}`);

async function main(argv: string[]): Promise<void> {
  const cli = cac('vaultmesh-agent');
  cli
    .option('--once', 'Run one enroll-or-heartbeat cycle and exit (non-zero on failure)')
    .option('--settings <path>', 'Env-style settings file (VAULTMESH_SETTINGS, default /etc/vaultmesh/agent.env)')
    .option('--cc-url <url>', 'Command center URL (VAULTMESH_CC_URL, default http://127.0.0.1:8088)')
    .option('--root <dir>', 'VaultMesh root, whose disk is reported (VAULTMESH_ROOT, default /var/lib/vaultmesh)')
    .option('--state-dir <dir>', 'Node key and agent state (VAULTMESH_STATE_DIR, default <root>/agent)')
    .option('--os-profile <name>', 'Policy profile (VAULTMESH_OS_PROFILE, default: ID from /etc/os-release)')
    .option('--node-id <id>', 'Node id (VAULTMESH_NODE_ID, default: hostname)')
    .option('--hostname <name>', 'Hostname reported to the center (VAULTMESH_HOSTNAME, default: this machine\'s)')
    .option('--join-token <token>', 'Join token for first enrollment (VAULTMESH_JOIN_TOKEN)')
    .option('--heartbeat-secs <n>', 'Heartbeat interval, ±10% jitter (VAULTMESH_HEARTBEAT_SECS, default 30)')
    .option('--services <units>', 'Comma-separated systemd units to report (VAULTMESH_SERVICES)')
    .option('--cloudflared-check <how>', 'unit | url:<ready url> | none (VAULTMESH_CLOUDFLARED_CHECK, default unit)')
    .option('--cc-pubkey <hex>', 'Pinned command-center public key(s), comma-separated (VAULTMESH_CC_PUBKEY)')
    .option('--allowed-actions <list>', 'Local command allowlist (VAULTMESH_ALLOWED_ACTIONS, default ping,sovereign-scan,service-status,collect-journal,rotate-key)')
    .option('--restartable-units <units>', 'Units service-restart may restart; enables it (VAULTMESH_RESTARTABLE_UNITS)')
    .option('--readable-units <units>', 'Units service-status and collect-journal may read, * for any (VAULTMESH_READABLE_UNITS, default vaultmesh-agent, cloudflared, ssh + --services + restartable)')
    .option('--cf-access-client-id <id>', 'Cloudflare Access service token id sent with every request (VAULTMESH_CF_ACCESS_CLIENT_ID)')
    .option('--cf-access-client-secret <secret>', 'Its secret; prefer the env file (VAULTMESH_CF_ACCESS_CLIENT_SECRET)')
    .option('--command-poll-secs <n>', 'Command long-poll duration (VAULTMESH_COMMAND_POLL_SECS, default 25)')
    .option('--command-skew-secs <n>', 'Accepted center clock lead for commands (VAULTMESH_COMMAND_SKEW_SECS, default 300)')
    .option('--scan-interval-secs <n>', 'Run a sovereign scan on this schedule, ±10% (VAULTMESH_SCAN_INTERVAL_SECS, default 0: only on command)')
    .option('--outbox-max-bytes <n>', 'Offline outbox size cap (VAULTMESH_OUTBOX_MAX_BYTES, default 16777216)')
    .option('--scan-config <file>', 'Scan settings JSON (VAULTMESH_SCAN_CONFIG, default: built-in; see docs/SCANS.md)')
    .option('--command-timeout-secs <n>', 'Per-action timeout (VAULTMESH_COMMAND_TIMEOUT_SECS, default 60; scans ≥ 300)')
    .option('--rotate-key-every <duration>', 'Rotate the node key when it is this old, e.g. 30d (VAULTMESH_ROTATE_KEY_EVERY, default off)')
    .example('vaultmesh-agent --once --cc-url http://127.0.0.1:8088 --join-token vmjoin_... --state-dir ./agent-state')
    .example('vaultmesh-agent rotate-key --state-dir ./agent-state   (agent stopped; a running one: vaultmesh cmd send <node> rotate-key)');
  const rotateKeyHelp =
    "Replace this node's key: a new key is written (node-key.next.pem, 0600), announced to the center signed by the old and the new key, then swapped in. " +
    'Needs the state dir, so stop the daemon first, or ask the running one with `vaultmesh cmd send <node> rotate-key`. See docs/OPERATIONS.md, "Rotating an agent key".';
  cli.usage('[options]   run the agent (a daemon; one cycle with --once)\n  $ vaultmesh-agent rotate-key [options]');
  cli
    .command('rotate-key', rotateKeyHelp)
    .usage(`rotate-key [options]\n\n${rotateKeyHelp}`)
    .example('vaultmesh-agent rotate-key --settings /etc/vaultmesh/agent.env');
  cli
    .help()
    .version(VERSION);
  const parsed = cli.parse(argv, { run: false });
  if (parsed.options.help || parsed.options.version) return;
  const o = parsed.options;
  const config = resolveAgentConfig(
    {
      ccUrl: o.ccUrl,
      root: o.root,
      stateDir: o.stateDir,
      osProfile: o.osProfile,
      nodeId: o.nodeId,
      hostname: o.hostname,
      joinToken: o.joinToken,
      heartbeatSecs: o.heartbeatSecs,
      services: o.services,
      cloudflaredCheck: o.cloudflaredCheck,
      ccPubkeys: o.ccPubkey,
      allowedActions: o.allowedActions,
      restartableUnits: o.restartableUnits,
      readableUnits: o.readableUnits,
      cfAccessClientId: o.cfAccessClientId,
      cfAccessClientSecret: o.cfAccessClientSecret,
      commandPollSecs: o.commandPollSecs,
      commandSkewSecs: o.commandSkewSecs,
      commandTimeoutSecs: o.commandTimeoutSecs,
      scanIntervalSecs: o.scanIntervalSecs,
      scanConfig: o.scanConfig,
      outboxMaxBytes: o.outboxMaxBytes,
      rotateKeyEvery: o.rotateKeyEvery,
    },
    process.env,
    readEnvFile(o.settings ?? process.env.VAULTMESH_SETTINGS ?? '/etc/vaultmesh/agent.env'),
  );
  const rotateOnly = cli.matchedCommandName === 'rotate-key';
  // Locked before the key or the state file is touched, so a second agent changes nothing.
  let unlock: () => void;
  try {
    unlock = lockStateDir(config.stateDir);
  } catch (err) {
    if (rotateOnly && isVaultMeshError(err) && err.code === 'AGENT_LOCKED') {
      throw new VaultMeshError('AGENT_LOCKED', `${err.message}. A running agent rotates its key when the center asks: vaultmesh cmd send ${config.nodeId} rotate-key`);
    }
    throw err;
  }
  process.once('exit', unlock);
  const store = openAgentState(config.stateDir);
  if (store.keyCreated) log(`created node key ${store.key.keyId} in ${config.stateDir}/node-key.pem`);
  const extraHeaders: Record<string, string> = {};
  if (config.cfAccessClientId && config.cfAccessClientSecret) {
    extraHeaders['cf-access-client-id'] = config.cfAccessClientId;
    extraHeaders['cf-access-client-secret'] = config.cfAccessClientSecret;
  }
  const clientOpts = { baseUrl: config.ccUrl, nodeId: config.nodeId, timeoutMs: config.requestTimeoutSecs * 1000, extraHeaders };
  // Signs with the key of the moment: a rotation in this process applies to every request signed after it.
  const client = createCcClient({ ...clientOpts, key: liveKey(store) });
  const rotator = createKeyRotator({ stateDir: config.stateDir, nodeId: config.nodeId, store, log, post: (key, path, body) => createCcClient({ ...clientOpts, key }).post(path, body) });
  if (rotateOnly) {
    const r = await rotator.rotate();
    console.log(`node ${config.nodeId}: key ${r.old_key_id} replaced by ${r.new_key_id}${r.resumed ? ' (finished a rotation started before)' : ''}; the center accepts the old key until ${r.old_key_valid_until}`);
    return;
  }
  // Offline outbox (daemon mode only; --once reports an unreachable center as a failure): heartbeats and scan
  // uploads wait in <state dir>/outbox.jsonl and are delivered in order when the center answers again.
  const sender = o.once
    ? undefined
    : createOutboxSender({
        outbox: openOutbox({ file: join(config.stateDir, 'outbox.jsonl'), maxBytes: config.outboxMaxBytes, log }),
        post: client.post,
        log,
        backoff: (attempt) => backoffMs(attempt, { capMs: Math.min(300_000, Math.max(5000, config.heartbeatSecs * 10_000)) }),
      });
  const commandClient: CcClient = sender
    ? { post: (path, body) => (path === '/api/agent/scan' ? sender.send('scan', path, body) : client.post(path, body)) as never, get: client.get, get lastServerDate() { return client.lastServerDate; } }
    : client;
  const witness = createLedgerWitness({ stateDir: config.stateDir, nodeId: config.nodeId, key: liveKey(store), log });
  const rotations = createRotationLearner({ configured: config.ccPubkeys, store, log, now: () => new Date() });
  const deps = { config, client, store, log, witness, rotations, ...(sender ? { outbox: sender } : {}) };
  const { runner, scheduledScan } = setupCommandRunner({ config, store, client: commandClient, agentVersion: VERSION, log, rotations, rotateKey: () => rotator.rotate() });

  if (o.once) {
    // A rotation left pending (a crash, or the center was unreachable) is finished before anything else is signed.
    await rotator.finishPending();
    const r = await runCycle(deps);
    log(r.outcome === 'heartbeat' ? `heartbeat accepted (seq ${r.seq})` : 'waiting for approval');
    if (r.outcome === 'heartbeat') {
      const done = await runner.pollOnce(0);
      if (done.length) log(`handled ${done.length} pending command(s)`);
    }
    return;
  }

  log(`vaultmesh-agent ${VERSION}: node ${config.nodeId} → ${config.ccUrl}, every ${config.heartbeatSecs} s`);
  // Under systemd (Type=notify, NotifyAccess=all): ready once configured (the agent works offline too, so it does
  // not wait for the center), and watchdog pings only while the heartbeat loop keeps turning: a loop stuck for
  // three intervals gets the agent restarted.
  const sd = createSdNotifier({ onError: (err) => log(`sd_notify: ${(err as Error).message}`) });
  let lastTurn = Date.now();
  await sd.ready(`node ${config.nodeId} → ${config.ccUrl}`);
  sd.startWatchdog(() => Date.now() - lastTurn < 3 * config.heartbeatSecs * 1000 + 60_000);
  let stopping = false;
  let wake: (() => void) | undefined;
  // Commands are long-polled beside the heartbeat loop, from the first accepted heartbeat on (enrolled, approved).
  const commandsAbort = new AbortController();
  let commandLoop: Promise<void> | undefined;
  const stop = () => {
    stopping = true;
    sd.stopWatchdog();
    void sd.stopping('stopping');
    commandsAbort.abort();
    wake?.();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  sender?.start();
  // The agent's own scan schedule, if configured (the center's orchestrator is the usual way): first run after one
  // interval, each run uploaded through the outbox like any scan.
  let scanTimer: NodeJS.Timeout | undefined;
  const scheduleScan = () => {
    if (config.scanIntervalSecs <= 0 || stopping) return;
    scanTimer = setTimeout(async () => {
      if (store.read().enrollment === 'approved') {
        const r = await scheduledScan().catch((err: Error) => ({ status: 'failed', output: err.message }));
        log(`scheduled sovereign scan: ${r.status} ${r.output ?? ''}`);
      }
      scheduleScan();
    }, config.scanIntervalSecs * 1000 * (0.9 + Math.random() * 0.2));
  };
  scheduleScan();
  if (sender?.outbox.length) log(`outbox: ${sender.outbox.length} item(s) waiting from before`);
  while (!stopping) {
    lastTurn = Date.now();
    try {
      await rotator.finishPending();
      const r = await runCycle(deps);
      if (r.outcome === 'heartbeat' && !commandLoop && !stopping) commandLoop = runner.loop({ waitSecs: config.commandPollSecs, signal: commandsAbort.signal });
      if (r.outcome === 'heartbeat') await rotator.rotateIfDue(config.rotateKeyEvery);
    } catch (err) {
      log(`cycle failed: ${isVaultMeshError(err) ? `${err.code}: ${err.message}` : String(err)}`);
    }
    const jitter = 0.9 + Math.random() * 0.2;
    await new Promise<void>((res) => {
      const t = setTimeout(res, config.heartbeatSecs * 1000 * jitter);
      wake = () => {
        clearTimeout(t);
        res();
      };
    });
  }
  // Ends a held long-poll at once instead of waiting for the center to answer it.
  await getGlobalDispatcher().destroy().catch(() => undefined);
  clearTimeout(scanTimer);
  await commandLoop;
  sender?.stop();
  log('stopped');
}

main(process.argv).catch((err) => {
  if (isVaultMeshError(err)) console.error(`vaultmesh-agent: ${err.code}: ${err.message}`);
  else console.error('vaultmesh-agent: fatal:', err);
  process.exitCode = 1;
});
