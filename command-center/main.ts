#!/usr/bin/env node
/** `vaultmesh-cc`: the command center daemon. */
import { isVaultMeshError } from '../protocol/errors.js';
import { VERSION } from '../lib/version.js';
import { startOrExplain, parseCenterArgs } from './center-flags.js';
import { startCenter } from './center.js';
import { consoleLogger } from '../lib/logger.js';
import { createSdNotifier } from '../lib/sd-notify.js';
import { migrateDatabase } from '../lib/postgres-schema.js';
import { databaseUrl } from './store/database-url.js';

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** `vaultmesh-cc migrate [--database-url … | --database-url-file …]`: brings a PostgreSQL store's schema up to date. */
async function migrateCommand(argv: string[]): Promise<void> {
  const config = parseCenterArgs([...argv.slice(0, 2), ...argv.slice(3)], { name: 'vaultmesh-cc migrate', examples: ['VAULTMESH_DATABASE_URL_FILE=/etc/vaultmesh/database-url vaultmesh-cc migrate'] }, { ...process.env, VAULTMESH_STORE: 'postgres' });
  if (!config) return;
  const pg = (await import('pg')).default;
  const r = await migrateDatabase(databaseUrl(config), (url) => new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 }));
  console.log(r.applied.length ? `schema migrated from version ${r.from} to ${r.to}: ${r.applied.map((m) => `${m.version} (${m.description})`).join(', ')}` : `schema already at version ${r.to}`);
}

async function main(argv: string[]): Promise<void> {
  if (argv[2] === 'migrate') return migrateCommand(argv);
  const config = parseCenterArgs(argv, {
    name: 'vaultmesh-cc',
    examples: ['vaultmesh-cc                              # 127.0.0.1:8088, journals in ./logs', 'vaultmesh-cc --log-dir /var/log/vaultmesh --state-dir /var/lib/vaultmesh-cc'],
  });
  if (!config) return;
  const accessOn = Boolean(config.cfAccessTeamDomain && config.cfAccessAud);
  if (!LOOPBACK.has(config.host)) {
    consoleLogger.warn(`listening on ${config.host}, not loopback: the API is reachable from the network. Put it behind Cloudflare Access or a tunnel.`);
    if (!accessOn) consoleLogger.warn('Cloudflare Access is NOT configured (VAULTMESH_CF_ACCESS_TEAM_DOMAIN, VAULTMESH_CF_ACCESS_AUD): operator requests are checked by Bearer token and console session only. See docs/DEPLOY.md.');
  }
  if (accessOn) consoleLogger.info(`Cloudflare Access required (team ${config.cfAccessTeamDomain})${config.cfAccessAllowBearer ? '; Bearer tokens also accepted without it' : ''}`);
  if (config.trustProxy) consoleLogger.info('trusting CF-Connecting-IP for client addresses (VAULTMESH_TRUST_PROXY)');
  if (config.autoApprove) consoleLogger.warn('--auto-approve is on: every node with a valid join token is trusted at once. Demos only.');
  const center = await startOrExplain(() => startCenter(config), config);
  if (!center) return;
  consoleLogger.info(`vaultmesh-cc ${VERSION} listening on ${center.url}`);
  consoleLogger.info(`console: ${center.url}/console   admin token: ${center.adminTokenFile}`);
  if (center.adminSocket) consoleLogger.info(`admin socket: ${center.adminSocket} (the vaultmesh CLI on this host uses it without a token)`);
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
