/**
 * Operator commands over the API: `nodes`, `join-token`, `keys`. Each action maps flags to one API call and
 * renders the result as a table or, with --json, as data.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { VaultMeshError } from '../../protocol/errors.js';
import { NODE_STATUSES } from '../../protocol/node-statuses.js';
import { apiOptionsFromFlags, createApiClient, type ApiOptions } from '../api-client.js';
import { joinTokenCreatedAnswer, joinTokenRevokedAnswer, joinTokensAnswer, nodeDecisionAnswer, nodeDetailAnswer, nodesAnswer } from '../answers.js';
import { printOut, renderJson, renderRecord, renderTable } from '../output.js';

export interface CommonFlags {
  ccUrl?: string;
  stateDir?: string;
  token?: string;
  adminSocket?: string;
  adminSocketOff?: boolean;
  json?: boolean;
}

const write = (s: string) => printOut(s);
const apiOpts = (f: CommonFlags): ApiOptions => apiOptionsFromFlags(f);
const usage = (msg: string) => new VaultMeshError('USAGE', msg);
const NODE_STATUS_NAMES: readonly string[] = NODE_STATUSES;
/** The center's accepted join-token lifetimes (POST /api/join-tokens), checked here to name the flag. */
const JOIN_TOKEN_TTL = { min: 60, max: 30 * 86_400 };

/** Parses durations like 30m, 1h, 7d into seconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(s.trim());
  if (!m) throw usage(`bad duration ${JSON.stringify(s)}: use e.g. 30m, 1h, 7d`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as 's']!;
}

/** `vaultmesh nodes` (declared in cli/command-table.ts). */
export async function nodesAction(action: string, nodeIds: string[], f: CommonFlags & { status?: string }): Promise<void> {
  if (f.status !== undefined && !NODE_STATUS_NAMES.includes(String(f.status))) throw usage(`--status must be one of ${NODE_STATUS_NAMES.join(', ')}, not ${JSON.stringify(f.status)}`);
  const api = createApiClient(apiOpts(f));
  if (action === 'list') {
    if (nodeIds.length) throw usage('nodes list takes no node id (filter with --status)');
    const nodes = (await api.get('/api/nodes', nodesAnswer)).filter((n) => f.status === undefined || n.status === f.status);
    write(f.json ? renderJson(nodes) : renderTable(nodes, ['node_id', 'hostname', 'os_profile', 'status', 'enrollment', 'last_seen', 'agent_version']));
    return;
  }
  if (action === 'approve' || action === 'reject' || action === 'revoke') {
    if (!nodeIds.length) throw usage(`nodes ${action} needs at least one node id`);
    // One decision per node; a failure is reported and the rest still go through (exit 1 if any failed).
    const results: Array<Record<string, unknown>> = [];
    for (const nodeId of nodeIds) {
      try {
        const r = await api.post(`/api/nodes/${encodeURIComponent(nodeId)}/${action}`, nodeDecisionAnswer);
        results.push(r);
        if (!f.json) write(`${nodeId}: ${r.enrollment}\n`);
      } catch (err) {
        if (!(err instanceof VaultMeshError) || nodeIds.length === 1) throw err;
        results.push({ node_id: nodeId, error: { code: err.code, message: err.message } });
        process.stderr.write(`vaultmesh: ${nodeId}: ${err.message}\n`);
        process.exitCode = 1;
      }
    }
    if (f.json) write(renderJson(nodeIds.length === 1 ? results[0] : results));
    return;
  }
  if (nodeIds.length !== 1) throw usage(`nodes ${action} needs one node id`);
  const nodeId = nodeIds[0]!;
  const id = encodeURIComponent(nodeId);
  if (action === 'show') {
    const node = await api.get(`/api/nodes/${id}`, nodeDetailAnswer);
    if (f.json) return void write(renderJson(node));
    const { history, last_heartbeat, facts, attention, ...rest } = node;
    write(
      renderRecord(
        [
          ...Object.entries(rest),
          ...(attention?.reasons ?? []).map((r): [string, string] => ['attention', `${r.severity}: ${r.message} (${r.code})`]),
          ['facts', facts],
          ['history', `${history.length} samples`],
        ],
        16,
      ),
    );
    return;
  }
  throw usage(`unknown action nodes ${action}: use list, show, approve, reject or revoke`);
}

/** `vaultmesh join-token` (declared in cli/command-table.ts). */
export async function joinTokenAction(action: string, tokenId: string | undefined, f: CommonFlags & { ttl?: string; uses?: string | number; label?: string }): Promise<void> {
  const api = createApiClient(apiOpts(f));
  if (action === 'create') {
    const uses = z.coerce.number().int().min(1).max(10_000).safeParse(f.uses ?? 1);
    if (!uses.success) throw usage('--uses must be an integer from 1 to 10000');
    const ttl = parseDuration(f.ttl ?? '1h');
    if (ttl < JOIN_TOKEN_TTL.min || ttl > JOIN_TOKEN_TTL.max) throw usage(`--ttl must be from 1m to 30d, not ${f.ttl}`);
    const r = await api.post('/api/join-tokens', joinTokenCreatedAnswer, {
      ttl_secs: ttl,
      uses: uses.data,
      ...(f.label ? { label: String(f.label) } : {}),
    });
    write(f.json ? renderJson({ token: r.token, expires_at: r.expires_at, uses: r.uses, token_id: r.token_id }) : `${r.token}\n(id ${r.token_id}, ${r.uses} use(s), expires ${r.expires_at}; shown once, store it safely)\n`);
    return;
  }
  if (action === 'list') {
    const list = await api.get('/api/join-tokens', joinTokensAnswer);
    write(f.json ? renderJson(list) : renderTable(list, ['token_id', 'label', 'state', 'used', 'uses', 'expires_at', 'created_by']));
    return;
  }
  if (action === 'revoke') {
    if (!tokenId) throw usage('join-token revoke needs a token id (see join-token list)');
    const r = await api.del(`/api/join-tokens/${encodeURIComponent(tokenId)}`, joinTokenRevokedAnswer);
    write(f.json ? renderJson(r) : `${tokenId}: revoked\n`);
    return;
  }
  throw usage(`unknown action join-token ${action}: use create, list or revoke`);
}

/** `vaultmesh keys` (declared in cli/command-table.ts). */
export async function keysAction(action: string, f: { stateDir?: string; json?: boolean }): Promise<void> {
  if (action !== 'show') throw usage(`unknown action keys ${action}: use show`);
  const dir = f.stateDir ?? process.env.VAULTMESH_STATE_DIR ?? './state';
  // The key code (and node:crypto) only for `keys`: `nodes` and `join-token` start without it.
  const [{ readKeyFile }, { keyIdOf }] = await Promise.all([import('../../lib/key-file.js'), import('../../protocol/keys.js')]);
  let publicKey: string;
  try {
    publicKey = readKeyFile(join(dir, 'cc-key.pem')).publicKeyHex;
  } catch (err) {
    // An operator without read access to the private key can still read the public half.
    try {
      publicKey = readFileSync(join(dir, 'cc-key.pem.pub'), 'utf8').trim();
    } catch {
      throw new VaultMeshError('NO_KEY', `no command-center key in ${dir} (${(err as Error).message}); start vaultmesh-cc once or pass --state-dir`);
    }
  }
  const out = { public_key: publicKey, key_id: keyIdOf(publicKey) };
  write(f.json ? renderJson(out) : `public_key ${out.public_key}\nkey_id     ${out.key_id}\n`);
}
