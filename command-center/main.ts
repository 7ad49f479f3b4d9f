#!/usr/bin/env node
/** `vaultmesh-cc`: the command center daemon. */
import { cac } from 'cac';
import { isVaultMeshError } from '../protocol/errors.js';
import { VERSION } from '../lib/version.js';
import { centerConfigSchema, centerEnvNames, kebab, resolveCenterConfig } from './config.js';
import { startCenter } from './center.js';
import { consoleLogger } from '../lib/logger.js';
import { createSdNotifier } from '../lib/sd-notify.js';

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

async function main(argv: string[]): Promise<void> {
  const cli = cac('vaultmesh-cc');
  cli
    .option('--host <host>', 'Address to listen on (VAULTMESH_HOST)', { default: undefined })
    .option('--port <port>', 'Port (VAULTMESH_PORT, default 8088)')
    .option('--log-dir <dir>', 'Journal directory (VAULTMESH_LOG_DIR, default ./logs)')
    .option('--state-dir <dir>', 'Keys and tokens, 0700 (VAULTMESH_STATE_DIR, default ./state)')
    .option('--fsync <mode>', 'always | batch | off (VAULTMESH_FSYNC, default batch)')
    .option('--repair', 'Quarantine corrupt journal lines instead of refusing to start (VAULTMESH_REPAIR)')
    .option('--new-center-key', 'The state dir lost its key but journals exist: make a new key anyway. Agents that pinned the old key refuse commands until re-pinned; see docs/OPERATIONS.md "Lost center key" (VAULTMESH_NEW_CENTER_KEY)')
    .option('--auto-approve', 'Approve every enrollment with a valid join token: demos only (VAULTMESH_AUTO_APPROVE)')
    .option('--heartbeat-secs <n>', 'Expected agent heartbeat interval (VAULTMESH_HEARTBEAT_SECS, default 30)')
    .option('--max-body-bytes <n>', 'Request body limit (VAULTMESH_MAX_BODY_BYTES, default 262144)')
    .option('--max-skew-secs <n>', 'Accepted clock skew of signed requests (VAULTMESH_MAX_SKEW_SECS, default 300)')
    .option('--policy <file>', 'Command policy JSON (VAULTMESH_POLICY, default: the shipped systemd/policy.json)')
    .option('--command-poll-secs <n>', 'Longest agent command long-poll (VAULTMESH_COMMAND_POLL_SECS, default 25)')
    .option('--command-redeliver-secs <n>', 'Redeliver an unanswered command after (VAULTMESH_COMMAND_REDELIVER_SECS, default 30)')
  // Every other setting gets a flag from its environment twin, so the two lists cannot drift apart.
  const described = new Set(cli.globalCommand.options.map((opt) => opt.name));
  for (const [key, env] of Object.entries(centerEnvNames())) {
    const flag = kebab(key);
    if (described.has(key)) continue;
    const isBool = typeof centerConfigSchema.shape[key as keyof typeof centerConfigSchema.shape].safeParse(undefined).data === 'boolean';
    cli.option(isBool ? `--${flag}` : `--${flag} <value>`, `(${env}) see docs/OPERATIONS.md`);
  }
  cli
    .example('vaultmesh-cc                              # 127.0.0.1:8088, journals in ./logs')
    .example('vaultmesh-cc --log-dir /var/log/vaultmesh --state-dir /var/lib/vaultmesh-cc')
    .help()
    .version(VERSION);
  const parsed = cli.parse(argv, { run: false });
  if (parsed.options.help || parsed.options.version) return;
  const o = parsed.options;
  const flags: Record<string, unknown> = {};
  for (const key of Object.keys(centerEnvNames())) if (o[key] !== undefined) flags[key] = o[key];
  const config = resolveCenterConfig(flags);
  const accessOn = Boolean(config.cfAccessTeamDomain && config.cfAccessAud);
  if (!LOOPBACK.has(config.host)) {
    consoleLogger.warn(`listening on ${config.host}, not loopback: the API is reachable from the network. Put it behind Cloudflare Access or a tunnel.`);
    if (!accessOn) consoleLogger.warn('Cloudflare Access is NOT configured (VAULTMESH_CF_ACCESS_TEAM_DOMAIN, VAULTMESH_CF_ACCESS_AUD): operator requests are checked by Bearer token and console session only. See docs/DEPLOY.md.');
  }
  if (accessOn) consoleLogger.info(`Cloudflare Access required (team ${config.cfAccessTeamDomain})${config.cfAccessAllowBearer ? '; Bearer tokens also accepted without it' : ''}`);
  if (config.trustProxy) consoleLogger.info('trusting CF-Connecting-IP for client addresses (VAULTMESH_TRUST_PROXY)');
  if (config.autoApprove) consoleLogger.warn('--auto-approve is on: every node with a valid join token is trusted at once. Demos only.');
  const center = await startCenter(config);
  consoleLogger.info(`vaultmesh-cc ${VERSION} listening on ${center.url}`);
  consoleLogger.info(`console: ${center.url}/console   admin token: ${center.adminTokenFile}`);
  // Under systemd (Type=notify, NotifyAccess=all): ready once listening, a watchdog ping while the loop runs.
  const sd = createSdNotifier({ onError: (err) => consoleLogger.warn(`sd_notify: ${(err as Error).message}`) });
  await sd.ready(`listening on ${center.url}`);
  sd.startWatchdog();

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    consoleLogger.info(`${signal}: stopping (no new requests, flushing journal)`);
    sd.stopWatchdog();
    void sd.stopping(`${signal}: flushing journal`);
    center.close().then(
      () => {
        consoleLogger.info('stopped cleanly');
        process.exitCode = 0;
      },
      (err) => {
        consoleLogger.error(`shutdown failed: ${err}`);
        process.exitCode = 1;
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main(process.argv).catch((err) => {
  if (isVaultMeshError(err)) console.error(`vaultmesh-cc: ${err.code}: ${err.message}`);
  else console.error('vaultmesh-cc: fatal:', err);
  process.exitCode = 1;
});
