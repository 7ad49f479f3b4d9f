#!/usr/bin/env node
/**
 * `npm run demo`: a command center (auto-approve on, demos only) plus three real agent processes with their own
 * state dirs and hostnames, so the console shows a live fleet within seconds. It takes the center's flags
 * (center-flags.ts) and keeps its journals and state apart from `npm start`'s (./demo/logs, ./demo/state), so demo
 * nodes never end up in a real center's journals. Ctrl-C stops everything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { isVaultMeshError } from '../protocol/errors.js';
import { startOrExplain, parseCenterArgs } from './center-flags.js';
import { startCenter } from './center.js';
import { consoleLogger } from '../lib/logger.js';

const AGENT = resolve(fileURLToPath(import.meta.url), '../../node-agent/main.js');
const NODES = [
  { id: 'demo-web-01', hostname: 'web-01.demo.internal', profile: 'debian' },
  { id: 'demo-db-01', hostname: 'db-01.demo.internal', profile: 'ubuntu' },
  { id: 'demo-edge-01', hostname: 'edge-01.demo.internal', profile: 'debian' },
];
/** Used when neither the flag nor its VAULTMESH_* twin is given. */
const DEMO_DEFAULTS = { logDir: './demo/logs', stateDir: './demo/state', heartbeatSecs: 5 };

async function main(argv: string[]): Promise<void> {
  const parsed = parseCenterArgs(argv, {
    name: 'npm run demo --',
    examples: [
      'npm run demo                         # 127.0.0.1:8088, journals in ./demo/logs, state in ./demo/state; always --auto-approve',
      'npm run demo -- --port 9090 --log-dir /tmp/vm-demo/logs --state-dir /tmp/vm-demo/state',
    ],
    defaults: DEMO_DEFAULTS,
  });
  if (!parsed) return;
  const config = { ...parsed, autoApprove: true };
  const center = await startOrExplain(() => startCenter(config), config);
  if (!center) return;
  const token = readFileSync(center.adminTokenFile, 'utf8').trim();
  const res = await request(`${center.url}/api/join-tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ uses: NODES.length, ttl_secs: 600, label: 'npm run demo' }),
  });
  const { token: joinToken } = (await res.body.json()) as { token: string };

  const agents: ChildProcess[] = NODES.map((n) =>
    spawn(process.execPath, [AGENT, '--settings', '/nonexistent'], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: {
        ...process.env,
        VAULTMESH_CC_URL: center.url,
        VAULTMESH_JOIN_TOKEN: joinToken,
        VAULTMESH_NODE_ID: n.id,
        // Three agents on one machine: without their own hostnames the console shows three identical rows.
        VAULTMESH_HOSTNAME: n.hostname,
        VAULTMESH_OS_PROFILE: n.profile,
        VAULTMESH_STATE_DIR: join(resolve(config.stateDir), 'demo-agents', n.id),
        VAULTMESH_ROOT: process.cwd(),
        VAULTMESH_HEARTBEAT_SECS: String(config.heartbeatSecs),
        VAULTMESH_CLOUDFLARED_CHECK: 'none',
        // Pinned like a real deployment should, rather than trusted on first use.
        VAULTMESH_CC_PUBKEY: center.services.centerKey.publicKeyHex,
      },
    }),
  );
  consoleLogger.info(`demo: ${NODES.length} agents heartbeating every ${config.heartbeatSecs} s`);
  consoleLogger.info(`demo: journals in ${resolve(config.logDir)}, state in ${resolve(config.stateDir)} (apart from npm start's)`);
  consoleLogger.info(`demo: open ${center.url}/console and sign in with the token in ${center.adminTokenFile}`);
  consoleLogger.info(`demo: or: curl -H "Authorization: Bearer $(cat ${center.adminTokenFile})" ${center.url}/api/nodes`);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    const exited = agents.map((a) => (a.exitCode !== null || a.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => a.once('exit', () => r()))));
    for (const a of agents) a.kill('SIGTERM');
    await Promise.all([center.close(), ...exited]);
    process.exitCode = 0;
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

main(process.argv).catch((err) => {
  if (isVaultMeshError(err)) console.error(`demo: ${err.code}: ${err.message}`);
  else console.error('demo failed:', err);
  process.exitCode = 1;
});
