/**
 * Builds the agent's command runner from its configuration: the nonce store in the state dir, the trusted center
 * keys (VAULTMESH_CC_PUBKEY, else trust-on-first-use keys, carried forward by accepted rotations; agent-state.json), the local allowlist and the action
 * registry, with `sovereign-scan` wired to the scan runner and uploaded to `POST /api/agent/scan`.
 */
import { join } from 'node:path';
import { hexKeySchema } from '../protocol/agent-api.js';
import { keyIdOf } from '../protocol/keys.js';
import { isVaultMeshError } from '../protocol/errors.js';
import { createActionRegistry, type ActionResult } from './actions.js';
import type { AgentStateStore } from './agent-state.js';
import type { CcClient } from './cc-client.js';
import { createCommandRunner, type CommandRunner } from './command-runner.js';
import type { AgentConfig } from './config.js';
import { openNonceStore, type NonceStore } from './nonce-store.js';
import { runSovereignScan } from './scan/run-scan.js';
import { defaultScanConfig, parseScanConfig, type ScanConfig } from './scan/scan-config.js';
import { readFileSync } from 'node:fs';
import { trustedCenterKeys, type RotationLearner } from './center-key-rotation.js';
import { VaultMeshError } from '../protocol/errors.js';
import { liveKey, type KeyRotationResult } from './key-rotation.js';

/** Scan settings from a JSON file (validated), or the built-in defaults. */
export function loadScanConfig(file: string | undefined): ScanConfig {
  if (!file) return defaultScanConfig();
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new VaultMeshError('CONFIG_INVALID', `cannot read scan config ${file}: ${(err as Error).message}`);
  }
  return parseScanConfig(raw);
}

/** Default local allowlist: read-only actions; service-restart only when restartable units are configured. */
export function localAllowedActions(config: Pick<AgentConfig, 'allowedActions' | 'restartableUnits'>): Set<string> {
  if (config.allowedActions.length) return new Set(config.allowedActions);
  const base = ['ping', 'sovereign-scan', 'service-status', 'collect-journal', 'rotate-key'];
  if (config.restartableUnits.length) base.push('service-restart');
  return new Set(base);
}

/** Units read by service-status and collect-journal unless VAULTMESH_READABLE_UNITS says otherwise. */
export const DEFAULT_READABLE_UNITS = ['vaultmesh-agent.service', 'cloudflared.service', 'ssh.service'];

/**
 * Units the center may read on this node: VAULTMESH_READABLE_UNITS when set (`*` for any), else the defaults plus
 * the units the agent reports (VAULTMESH_SERVICES) and may restart: the center sees those already.
 */
export function localReadableUnits(config: Pick<AgentConfig, 'readableUnits' | 'services' | 'restartableUnits'>): Set<string> {
  if (config.readableUnits.length) return new Set(config.readableUnits);
  return new Set([...DEFAULT_READABLE_UNITS, ...config.services, ...config.restartableUnits]);
}

/** Pinned keys by key_id. Configured keys always count; TOFU keys only when none are configured. */
export function pinnedCenterKeys(configured: readonly string[], tofu: ReadonlyArray<{ public_key: string }>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of configured) if (hexKeySchema.safeParse(k).success) out[keyIdOf(k)] = k;
  if (!Object.keys(out).length) for (const k of tofu) out[keyIdOf(k.public_key)] = k.public_key;
  return out;
}

/** The `rotate-key` action: the receipt's output is the rotation (old and new key id), its failure the reason. */
export function rotateKeyAction(rotate: () => Promise<KeyRotationResult>): () => Promise<ActionResult> {
  return async () => {
    try {
      return { status: 'succeeded', exit_code: 0, output: JSON.stringify(await rotate()) };
    } catch (err) {
      return { status: 'failed', exit_code: 1, output: isVaultMeshError(err) ? `${err.code}: ${err.message}` : String(err), reason: 'ACTION_ERROR' };
    }
  };
}

export function setupCommandRunner(deps: {
  config: AgentConfig;
  store: AgentStateStore;
  client: CcClient;
  agentVersion: string;
  log: (msg: string) => void;
  now?: () => Date;
  /** Rotates the node key for the `rotate-key` command (key-rotation.ts); without it the action fails NOT_IMPLEMENTED. */
  rotateKey?: () => Promise<KeyRotationResult>;
  /** Center key rotations: a command refused for a key the agent missed says why (center-key-rotation.ts). */
  rotations?: Pick<RotationLearner, 'explainUnknownKey'>;
}): { runner: CommandRunner; nonces: NonceStore; scheduledScan: () => Promise<ActionResult> } {
  const { config, store, client, log } = deps;
  const nonces = openNonceStore({ file: join(config.stateDir, 'command-nonces.jsonl'), retainMs: config.commandSkewSecs * 1000 + 60_000 });
  const bad = config.ccPubkeys.filter((k) => !hexKeySchema.safeParse(k).success);
  if (bad.length) log(`WARNING: ignoring malformed VAULTMESH_CC_PUBKEY entries (want 64 lowercase hex): ${bad.join(', ')}`);

  const scanConfig = loadScanConfig(config.scanConfig);
  const sovereignScan = async (ctx: { commandId?: string }): Promise<ActionResult> => {
    const report = await runSovereignScan(scanConfig, {
      nodeId: config.nodeId,
      agentVersion: deps.agentVersion,
      stateDir: config.stateDir,
      trigger: ctx.commandId ? 'command' : 'schedule',
      ...(ctx.commandId ? { commandId: ctx.commandId } : {}),
      ...(client.lastServerDate ? { centerTime: client.lastServerDate, centerTimeObservedAt: new Date() } : {}),
    });
    const summary = { report_id: report.id, summary: report.summary };
    try {
      const r = await client.post<{ seq: number }>('/api/agent/scan', report);
      return { status: 'succeeded', exit_code: 0, output: JSON.stringify({ ...summary, uploaded: true, seq: r.seq }) };
    } catch (err) {
      const code = isVaultMeshError(err) ? err.code : 'ERROR';
      return { status: 'failed', exit_code: 1, output: JSON.stringify({ ...summary, uploaded: false, error: `${code}: ${(err as Error).message}` }), reason: 'SCAN_UPLOAD_FAILED' };
    }
  };

  const runner = createCommandRunner({
    nodeId: config.nodeId,
    key: liveKey(store),
    client,
    nonces,
    pinnedKeys: () => trustedCenterKeys(config.ccPubkeys, store.read(), (deps.now ?? (() => new Date()))()),
    allowedActions: localAllowedActions(config),
    restartableUnits: new Set(config.restartableUnits),
    readableUnits: localReadableUnits(config),
    actions: createActionRegistry({
      nodeId: config.nodeId,
      agentVersion: deps.agentVersion,
      restartableUnits: new Set(config.restartableUnits),
      sovereignScan,
      ...(deps.rotateKey ? { rotateKey: rotateKeyAction(deps.rotateKey) } : {}),
    }),
    maxSkewMs: config.commandSkewSecs * 1000,
    timeoutsMs: { default: config.commandTimeoutSecs * 1000, 'sovereign-scan': Math.max(config.commandTimeoutSecs, 300) * 1000 },
    log,
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.rotations ? { explainUnknownKey: (id: string) => deps.rotations!.explainUnknownKey(id) } : {}),
  });
  return { runner, nonces, scheduledScan: () => sovereignScan({}) };
}
