#!/usr/bin/env node
/**
 * `npm run demo`: a command center (auto-approve on, demos only) plus three real agent processes with their own
 * state dirs, so the console shows a live fleet within seconds. Ctrl-C stops everything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { resolveCenterConfig } from './config.js';
import { startCenter } from './center.js';
import { consoleLogger } from '../lib/logger.js';

const AGENT = resolve(fileURLToPath(import.meta.url), '../../node-agent/main.js');
const NODES = [
  { id: 'demo-web-01', profile: 'debian' },
  { id: 'demo-db-01', profile: 'ubuntu' },
  { id: 'demo-edge-01', profile: 'debian' },
];

async function main(): Promise<void> {
  const config = resolveCenterConfig({ autoApprove: true, heartbeatSecs: 5 });
  const center = await startCenter(config);
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
        VAULTMESH_OS_PROFILE: n.profile,
        VAULTMESH_STATE_DIR: join(resolve(config.stateDir), 'demo-agents', n.id),
        VAULTMESH_ROOT: process.cwd(),
        VAULTMESH_HEARTBEAT_SECS: '5',
        VAULTMESH_CLOUDFLARED_CHECK: 'none',
        // Pinned like a real deployment should, rather than trusted on first use.
        VAULTMESH_CC_PUBKEY: center.services.centerKey.publicKeyHex,
      },
    }),
  );
  consoleLogger.info(`demo: ${NODES.length} agents heartbeating every 5 s`);
  consoleLogger.info(`demo: open ${center.url}/console and sign in with the token in ${center.adminTokenFile}`);
  consoleLogger.info(`demo: or: curl -H "Authorization: Bearer $(cat ${center.adminTokenFile})" ${center.url}/api/nodes`);

  const stop = async () => {
    for (const a of agents) a.kill('SIGTERM');
    await center.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err) => {
  console.error('demo failed:', err);
  process.exitCode = 1;
});
