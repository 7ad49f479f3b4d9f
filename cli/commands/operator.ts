/**
 * Operator commands over the API: `nodes`, `join-token`, `keys`. Each action maps flags to one API call and
 * renders the result as a table or, with --json, as data.
 */
import type { CAC } from 'cac';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { VaultMeshError } from '../../protocol/errors.js';
import { keyIdOf, readKeyFile } from '../../protocol/keys.js';
import { createApiClient, type ApiOptions } from '../api-client.js';
import { joinTokenCreatedAnswer, joinTokenRevokedAnswer, joinTokensAnswer, nodeDecisionAnswer, nodeDetailAnswer, nodesAnswer } from '../answers.js';
import { renderJson, renderTable } from '../output.js';

export interface CommonFlags {
  ccUrl?: string;
  stateDir?: string;
  token?: string;
  json?: boolean;
}

const write = (s: string) => process.stdout.write(s);
const apiOpts = (f: CommonFlags): ApiOptions => ({ ...(f.ccUrl ? { ccUrl: f.ccUrl } : {}), ...(f.stateDir ? { stateDir: f.stateDir } : {}), ...(f.token ? { token: f.token } : {}) });
const usage = (msg: string) => new VaultMeshError('USAGE', msg, { status: 2 });

function withCommon(cmd: ReturnType<CAC['command']>) {
  return cmd
    .option('--cc-url <url>', 'Command center URL (VAULTMESH_CC_URL, default http://127.0.0.1:8088)')
    .option('--state-dir <dir>', 'Where admin.token lives (VAULTMESH_STATE_DIR, default ./state)')
    .option('--token <token>', 'Operator token (VAULTMESH_TOKEN)')
    .option('--json', 'Machine-readable output');
}

/** Parses durations like 30m, 1h, 7d into seconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(s.trim());
  if (!m) throw usage(`bad duration ${JSON.stringify(s)}: use e.g. 30m, 1h, 7d`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as 's']!;
}

export function registerOperatorCommands(cli: CAC): void {
  withCommon(cli.command('nodes <action> [node_id]', 'Fleet nodes: list | show | approve | reject | revoke'))
    .usage('nodes <list|show|approve|reject|revoke> [node_id] [options]')
    .example('  $ vaultmesh nodes list')
    .example('  $ vaultmesh nodes approve web-01')
    .example('  $ vaultmesh nodes show web-01 --json | jq .last_heartbeat.metrics')
    .action(async (action: string, nodeId: string | undefined, f: CommonFlags) => {
      const api = createApiClient(apiOpts(f));
      if (action === 'list') {
        const nodes = await api.get('/api/nodes', nodesAnswer);
        write(f.json ? renderJson(nodes) : renderTable(nodes, ['node_id', 'hostname', 'os_profile', 'status', 'enrollment', 'last_seen', 'agent_version']));
        return;
      }
      if (!nodeId) throw usage(`nodes ${action} needs a node id`);
      const id = encodeURIComponent(nodeId);
      if (action === 'show') {
        const node = await api.get(`/api/nodes/${id}`, nodeDetailAnswer);
        if (f.json) return void write(renderJson(node));
        const { history, last_heartbeat, facts, ...rest } = node;
        write(Object.entries(rest).map(([k, v]) => `${k.padEnd(16)} ${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v ?? '-')}`).join('\n') + '\n');
        write(`${'facts'.padEnd(16)} ${JSON.stringify(facts)}\n${'history'.padEnd(16)} ${history.length} samples\n`);
        return;
      }
      if (action === 'approve' || action === 'reject' || action === 'revoke') {
        const r = await api.post(`/api/nodes/${id}/${action}`, nodeDecisionAnswer);
        write(f.json ? renderJson(r) : `${nodeId}: ${r.enrollment}\n`);
        return;
      }
      throw usage(`unknown action nodes ${action}: use list, show, approve, reject or revoke`);
    });

  withCommon(cli.command('join-token <action> [token_id]', 'Join tokens for enrollment: create | list | revoke'))
    .usage('join-token <create|list|revoke> [token_id] [--ttl 1h] [--uses 5] [--label text]')
    .option('--ttl <duration>', 'create: lifetime such as 30m, 1h, 7d (default 1h)')
    .option('--uses <n>', 'create: how many enrollments it admits (default 1)')
    .option('--label <text>', 'create: a note for the token list')
    .example('  $ vaultmesh join-token create --ttl 1h --uses 5')
    .example('  $ vaultmesh join-token create --json | jq -r .token')
    .action(async (action: string, tokenId: string | undefined, f: CommonFlags & { ttl?: string; uses?: string | number; label?: string }) => {
      const api = createApiClient(apiOpts(f));
      if (action === 'create') {
        const uses = z.coerce.number().int().min(1).max(10_000).safeParse(f.uses ?? 1);
        if (!uses.success) throw usage('--uses must be an integer from 1 to 10000');
        const r = await api.post('/api/join-tokens', joinTokenCreatedAnswer, {
          ttl_secs: parseDuration(f.ttl ?? '1h'),
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
    });

  cli
    .command('keys <action>', 'The command-center signing key: show')
    .option('--state-dir <dir>', 'Center state dir holding cc-key.pem (VAULTMESH_STATE_DIR, default ./state)')
    .option('--json', 'Machine-readable output: { public_key, key_id }')
    .example('  $ vaultmesh keys show --json')
    .action(async (action: string, f: { stateDir?: string; json?: boolean }) => {
      if (action !== 'show') throw usage(`unknown action keys ${action}: use show`);
      const dir = f.stateDir ?? process.env.VAULTMESH_STATE_DIR ?? './state';
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
    });
}
