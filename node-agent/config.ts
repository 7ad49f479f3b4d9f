/**
 * Agent configuration: flags over process environment over `/etc/vaultmesh/agent.env` over defaults.
 */
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { VaultMeshError, detailsFromZodIssues } from '../protocol/errors.js';
import { hostnameSchema } from '../protocol/agent-api.js';

const list = z
  .string()
  .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean));

/** Seconds, from `3600`, `90s`, `30m`, `12h` or `30d`; `0` or `off` is 0 (disabled). */
const durationSecs = z
  .union([z.number(), z.string()])
  .transform((v, ctx) => {
    const m = /^(\d+)(s|m|h|d)?$/.exec(String(v).trim());
    if (String(v).trim() === 'off') return 0;
    if (!m) {
      ctx.addIssue({ code: 'custom', message: 'must be a duration like 3600, 90s, 30m, 12h, 30d, or off' });
      return z.NEVER;
    }
    return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[(m[2] ?? 's') as 's'];
  })
  .pipe(z.number().int().min(0).max(3650 * 86_400));

export const agentConfigSchema = z.object({
  ccUrl: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:8088'),
  root: z.string().min(1).default('/var/lib/vaultmesh'),
  stateDir: z.string().min(1).optional(),
  heartbeatSecs: z.coerce.number().int().min(1).max(86_400).default(30),
  osProfile: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,31}$/).optional(),
  nodeId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/).optional(),
  /** The hostname reported at enrollment and in heartbeats; default the machine's (several agents on one host differ by it). */
  hostname: hostnameSchema.optional(),
  joinToken: z.string().min(16).max(256).optional(),
  services: list.default([]),
  /** `unit`: the cloudflared systemd unit is active; `url:<http url>`: cloudflared's /ready answers 200; `none`: no tunnel check (reported ok). */
  cloudflaredCheck: z.string().regex(/^(none|unit|url:https?:\/\/\S+)$/).default('unit'),
  ccPubkeys: list.default([]),
  cfAccessClientId: z.string().optional(),
  cfAccessClientSecret: z.string().optional(),
  requestTimeoutSecs: z.coerce.number().min(1).max(300).default(15),
  /** Local command allowlist (defence in depth); empty = ping, sovereign-scan, service-status, collect-journal (+ service-restart with restartable units). */
  allowedActions: list.default([]),
  restartableUnits: list.default([]),
  readableUnits: list.default([]),
  commandPollSecs: z.coerce.number().int().min(0).max(300).default(25),
  /** How far a command's issued_at may be in this host's future (center clock ahead). */
  commandSkewSecs: z.coerce.number().int().min(0).max(3600).default(300),
  commandTimeoutSecs: z.coerce.number().int().min(1).max(3600).default(60),
  /** The agent's own scan schedule (±10% jitter); 0 = only on the center's `sovereign-scan` commands. */
  scanIntervalSecs: z.coerce.number().int().min(0).max(30 * 86_400).default(0),
  /** Size cap of the offline outbox (oldest heartbeats are evicted first, scans last). */
  outboxMaxBytes: z.coerce.number().int().min(64 * 1024).max(1024 * 1024 * 1024).default(16 * 1024 * 1024),
  /** JSON file with scan settings (node-agent/scan/scan-config.ts); unset = built-in defaults. */
  scanConfig: z.string().min(1).optional(),
  /** Rotate the node key when it is this old (key-rotation.ts); 0 = only on `vaultmesh-agent rotate-key` or the `rotate-key` command. */
  rotateKeyEvery: durationSecs.default(0),
});

export type AgentConfig = Omit<z.infer<typeof agentConfigSchema>, 'stateDir' | 'osProfile' | 'nodeId' | 'hostname'> & {
  stateDir: string;
  osProfile: string;
  nodeId: string;
  hostname: string;
};

export const AGENT_ENV: Record<string, string> = {
  ccUrl: 'VAULTMESH_CC_URL',
  root: 'VAULTMESH_ROOT',
  stateDir: 'VAULTMESH_STATE_DIR',
  heartbeatSecs: 'VAULTMESH_HEARTBEAT_SECS',
  osProfile: 'VAULTMESH_OS_PROFILE',
  nodeId: 'VAULTMESH_NODE_ID',
  hostname: 'VAULTMESH_HOSTNAME',
  joinToken: 'VAULTMESH_JOIN_TOKEN',
  services: 'VAULTMESH_SERVICES',
  cloudflaredCheck: 'VAULTMESH_CLOUDFLARED_CHECK',
  ccPubkeys: 'VAULTMESH_CC_PUBKEY',
  cfAccessClientId: 'VAULTMESH_CF_ACCESS_CLIENT_ID',
  cfAccessClientSecret: 'VAULTMESH_CF_ACCESS_CLIENT_SECRET',
  requestTimeoutSecs: 'VAULTMESH_REQUEST_TIMEOUT_SECS',
  allowedActions: 'VAULTMESH_ALLOWED_ACTIONS',
  restartableUnits: 'VAULTMESH_RESTARTABLE_UNITS',
  readableUnits: 'VAULTMESH_READABLE_UNITS',
  commandPollSecs: 'VAULTMESH_COMMAND_POLL_SECS',
  commandSkewSecs: 'VAULTMESH_COMMAND_SKEW_SECS',
  commandTimeoutSecs: 'VAULTMESH_COMMAND_TIMEOUT_SECS',
  scanIntervalSecs: 'VAULTMESH_SCAN_INTERVAL_SECS',
  outboxMaxBytes: 'VAULTMESH_OUTBOX_MAX_BYTES',
  scanConfig: 'VAULTMESH_SCAN_CONFIG',
  rotateKeyEvery: 'VAULTMESH_ROTATE_KEY_EVERY',
};

/** `ID` from /etc/os-release (debian, ubuntu, rhel…), the default os_profile. */
export function detectOsProfile(osRelease = '/etc/os-release'): string {
  try {
    const m = /^ID="?([a-z0-9._-]+)"?$/m.exec(readFileSync(osRelease, 'utf8'));
    if (m) return m[1]!.slice(0, 32);
  } catch {
    // no os-release (minimal container): fall through to the generic profile
  }
  return 'linux';
}

export function resolveAgentConfig(flags: Record<string, unknown>, env: Record<string, string | undefined>, fileEnv: Record<string, string>): AgentConfig {
  const raw: Record<string, unknown> = {};
  for (const [key, name] of Object.entries(AGENT_ENV)) {
    const v = flags[key] ?? (env[name] || undefined) ?? (fileEnv[name] || undefined);
    if (v !== undefined) raw[key] = Array.isArray(v) ? v.join(',') : v;
  }
  const parsed = agentConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    const key = String(first.path[0]);
    throw new VaultMeshError('CONFIG_INVALID', `invalid setting --${key.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`)} / ${AGENT_ENV[key] ?? key}: ${first.message}`, { details: detailsFromZodIssues(parsed.error.issues) });
  }
  const c = parsed.data;
  const nodeId = c.nodeId ?? sanitizeNodeId(hostname());
  return {
    ...c,
    ccUrl: c.ccUrl.replace(/\/+$/, ''),
    stateDir: c.stateDir ?? `${c.root}/agent`,
    osProfile: c.osProfile ?? detectOsProfile(),
    nodeId,
    hostname: c.hostname ?? (hostname().slice(0, 253) || nodeId),
  };
}

function sanitizeNodeId(h: string): string {
  const id = h.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 63);
  return id || 'node';
}
