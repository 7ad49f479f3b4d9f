/**
 * One agent cycle: send a heartbeat; if the center does not know this node yet, enroll with the join token; if
 * enrollment is approved at once (auto-approve), heartbeat right after. Returns what happened; throws
 * VaultMeshError on failure.
 */
import { centerKeysSchema, enrollAnswerSchema, heartbeatAnswerSchema, type Heartbeat } from '../protocol/agent-api.js';
import { keyIdOf } from '../protocol/keys.js';
import type { z } from 'zod';
import { VaultMeshError } from '../protocol/errors.js';
import type { AgentConfig } from './config.js';
import type { CcClient } from './cc-client.js';
import { collectMetrics, runFile, serviceStates } from './host-metrics.js';
import type { AgentStateStore } from './agent-state.js';
import { request } from 'undici';
import { randomBytes } from 'node:crypto';
import type { OutboxSender } from './outbox.js';
import { VERSION } from '../lib/version.js';
import type { LedgerWitness } from './ledger-witness.js';
import { trustedCenterKeys, type RotationLearner } from './center-key-rotation.js';

export type CycleResult = { outcome: 'heartbeat'; seq: number } | { outcome: 'pending' } | { outcome: 'queued'; waiting: number };

export interface AgentDeps {
  config: AgentConfig;
  client: CcClient;
  store: AgentStateStore;
  log: (msg: string) => void;
  now?: () => Date;
  /** Offline outbox (outbox.ts): heartbeats of an approved node wait there while the center is unreachable. */
  outbox?: OutboxSender;
  /** Witnesses the center's ledgers through the heartbeat (ledger-witness.ts). */
  witness?: LedgerWitness;
  /** Takes the center key rotation statements answers carry (center-key-rotation.ts). */
  rotations?: RotationLearner;
}

/** A unique heartbeat id chosen by the agent, so a retried heartbeat is stored once. */
export function heartbeatId(nodeId: string, now: Date): string {
  return `${nodeId}:hb:${now.getTime().toString(36)}:${randomBytes(6).toString('hex')}`;
}

export async function buildHeartbeat(config: AgentConfig, now: Date): Promise<Heartbeat> {
  const [metrics, services, cloudflareOk] = await Promise.all([
    collectMetrics(config.root),
    serviceStates(config.services),
    checkCloudflared(config.cloudflaredCheck),
  ]);
  return {
    node_id: config.nodeId,
    hostname: config.hostname,
    os_profile: config.osProfile,
    cloudflare_ok: cloudflareOk,
    services_ok: Object.values(services).every((s) => s === 'active'),
    vaultmesh_root: config.root,
    timestamp: now.toISOString(),
    agent_version: VERSION,
    metrics,
    ...(config.services.length ? { services } : {}),
  };
}

async function checkCloudflared(check: string): Promise<boolean> {
  if (check === 'none') return true;
  if (check === 'unit') {
    try {
      return (await runFile('systemctl', ['is-active', '--', 'cloudflared'], 5000)).stdout.trim() === 'active';
    } catch {
      return false;
    }
  }
  try {
    const res = await request(check.slice(4), { headersTimeout: 5000, bodyTimeout: 5000 });
    await res.body.dump();
    return res.statusCode === 200;
  } catch {
    return false;
  }
}

export async function runCycle(deps: AgentDeps): Promise<CycleResult> {
  const now = deps.now ?? (() => new Date());
  try {
    return await sendHeartbeat(deps, now());
  } catch (err) {
    if (!(err instanceof VaultMeshError)) throw err;
    if (err.code === 'NODE_PENDING') {
      deps.log('enrollment is pending operator approval (vaultmesh nodes approve ' + deps.config.nodeId + ')');
      return { outcome: 'pending' };
    }
    if (err.code !== 'UNKNOWN_NODE') throw err;
  }
  const status = await enroll(deps);
  if (status !== 'approved') return { outcome: 'pending' };
  return sendHeartbeat(deps, now());
}

async function sendHeartbeat(deps: AgentDeps, now: Date): Promise<CycleResult> {
  const witness = deps.witness?.report();
  // The keys this agent trusts, so the center can offer the rotations it lacks and see one that missed a rotation.
  const keyIds = Object.keys(trustedCenterKeys(deps.config.ccPubkeys, deps.store.read(), now)).sort();
  const hb = {
    ...(await buildHeartbeat(deps.config, now)),
    id: heartbeatId(deps.config.nodeId, now),
    ...(witness ? { witness } : {}),
    ...(keyIds.length ? { center_key_ids: keyIds } : {}),
  };
  // With an outbox, only an approved node queues: enrollment questions need the center's answer.
  const res = deps.outbox
    ? await deps.outbox.send<HeartbeatAnswer>('heartbeat', '/api/agent/heartbeat', hb, { canQueue: deps.store.read().enrollment === 'approved' })
    : await deps.client.post<HeartbeatAnswer & { queued?: false }>('/api/agent/heartbeat', hb);
  if (res.queued === true) return { outcome: 'queued', waiting: deps.outbox!.outbox.length };
  const answer = centerAnswer(heartbeatAnswerSchema, res, 'heartbeat');
  const s = deps.store.read();
  // A node approved after it enrolled learns the center key from its first accepted heartbeat.
  const tofu = trustOnFirstUse(deps, s.tofu_center_keys, answer.center_keys);
  if (s.enrollment !== 'approved' || tofu !== s.tofu_center_keys) deps.store.write({ ...s, enrollment: 'approved', tofu_center_keys: tofu });
  deps.rotations?.learn(res);
  deps.witness?.observe(answer.ledger, Object.values(trustedCenterKeys(deps.config.ccPubkeys, deps.store.read(), now)));
  return { outcome: 'heartbeat', seq: answer.seq };
}

type CenterKeys = z.output<typeof centerKeysSchema>;
type HeartbeatAnswer = { seq: number; center_keys?: CenterKeys; ledger?: unknown };

/**
 * Checks an answer before anything in it is trusted or stored: center keys above all, which the agent may pin on
 * first use. A key id that does not match its key is refused like any other malformed answer.
 */
function centerAnswer<S extends z.ZodType<{ center_keys?: CenterKeys | undefined }>>(schema: S, res: unknown, what: string): z.output<S> {
  const r = schema.safeParse(res);
  const badKey = r.success ? r.data.center_keys?.find((k) => keyIdOf(k.public_key) !== k.key_id) : undefined;
  if (!r.success || badKey) {
    const why = r.success ? `center key ${badKey!.key_id} does not match its public key` : `${r.error.issues[0]?.path.join('.') || 'answer'}: ${r.error.issues[0]?.message}`;
    throw new VaultMeshError('BAD_ANSWER', `unexpected ${what} answer from the center (${why}); nothing stored`);
  }
  return r.data;
}

/** Keys to trust when none are pinned: the ones already trusted, else the ones the center just offered (logged). */
function trustOnFirstUse(deps: AgentDeps, current: CenterKeys, offered: CenterKeys | undefined): CenterKeys {
  if (deps.config.ccPubkeys.length > 0 || current.length > 0 || !offered?.length) return current;
  deps.log(`WARNING: no VAULTMESH_CC_PUBKEY pinned; trusting the center key(s) ${offered.map((k) => k.key_id).join(', ')} on first use. Pin it to remove this trust-on-first-use.`);
  return offered;
}

async function enroll(deps: AgentDeps): Promise<string> {
  const { config, store } = deps;
  if (!config.joinToken) {
    throw new VaultMeshError(
      'NO_JOIN_TOKEN',
      `the center knows no node ${config.nodeId} with this agent's key ${store.key.keyId}, and no join token is configured: set VAULTMESH_JOIN_TOKEN (vaultmesh join-token create). ` +
        `If this machine was cloned from an enrolled node, also give it its own id (VAULTMESH_NODE_ID).`,
    );
  }
  const raw = await deps.client.post<unknown>('/api/agent/enroll', {
    token: config.joinToken,
    node_id: config.nodeId,
    hostname: config.hostname,
    os_profile: config.osProfile,
    public_key: store.key.publicKeyHex,
    agent_version: VERSION,
    facts: { arch: process.arch, platform: process.platform, node: process.version },
  });
  const res = centerAnswer(enrollAnswerSchema, raw, 'enrollment');
  const s = store.read();
  const tofu = res.status === 'approved' ? trustOnFirstUse(deps, s.tofu_center_keys, res.center_keys) : s.tofu_center_keys;
  store.write({ ...s, enrollment: res.status === 'approved' ? 'approved' : 'pending', tofu_center_keys: tofu });
  if (res.status === 'approved') deps.rotations?.learn(raw);
  deps.log(`enrollment ${res.status} for node ${config.nodeId} (key ${store.key.keyId})`);
  return res.status;
}
