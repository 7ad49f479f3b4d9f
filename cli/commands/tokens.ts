/**
 * `vaultmesh tokens create|list|revoke`: scoped API tokens for bots and scripts (admin scope on the center).
 * The token is printed once by `create`; the center keeps only its hash.
 */
import type { CAC } from 'cac';
import { VaultMeshError } from '../../protocol/errors.js';
import { createApiClient, type ApiOptions } from '../api-client.js';
import { apiTokenAnswer, apiTokenCreatedAnswer, apiTokensAnswer } from '../answers.js';
import { renderJson, renderTable } from '../output.js';
import { parseDuration, type CommonFlags } from './operator.js';

const SCOPES = ['admin', 'events:read', 'events:write', 'nodes:read', 'nodes:approve', 'commands:write', 'metrics:read', 'ledger:read'];
const write = (s: string) => process.stdout.write(s);
const usage = (msg: string) => new VaultMeshError('USAGE', msg);
const apiOpts = (f: CommonFlags): ApiOptions => ({ ...(f.ccUrl ? { ccUrl: f.ccUrl } : {}), ...(f.stateDir ? { stateDir: f.stateDir } : {}), ...(f.token ? { token: f.token } : {}) });

export interface TokensFlags extends CommonFlags {
  name?: string;
  scopes?: string;
  ttl?: string;
}

/** Parses `events:write,nodes:read` into a checked scope list. */
export function parseScopes(raw: string | undefined): string[] {
  const list = String(raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!list.length) throw usage(`--scopes is required: a comma-separated list of ${SCOPES.join(', ')}`);
  const bad = list.filter((s) => !SCOPES.includes(s));
  if (bad.length) throw usage(`unknown scope ${bad.join(', ')}: use ${SCOPES.join(', ')}`);
  return [...new Set(list)];
}

export function registerTokensCommands(cli: CAC): void {
  cli
    .command('tokens <action> [token_id]', 'Scoped API tokens for bots: create | list | revoke')
    .usage('tokens <create|list|revoke> [token_id] [--name ci-bot --scopes events:write,nodes:read --ttl 30d]')
    .option('--name <name>', 'create: the token name (becomes the author of what it does, as token:<name>)')
    .option('--scopes <list>', `create: comma-separated scopes (${SCOPES.join(', ')})`)
    .option('--ttl <duration>', 'create: lifetime such as 12h, 30d (default: no expiry)')
    .option('--cc-url <url>', 'Command center URL (VAULTMESH_CC_URL, default http://127.0.0.1:8088)')
    .option('--state-dir <dir>', 'Where admin.token lives (VAULTMESH_STATE_DIR, default ./state)')
    .option('--token <token>', 'Operator token with the admin scope (VAULTMESH_TOKEN)')
    .option('--json', 'Machine-readable output')
    .example('  $ vaultmesh tokens create --name ci-bot --scopes events:write,nodes:read --ttl 30d')
    .example('  $ vaultmesh tokens create --name grafana --scopes admin --json | jq -r .token')
    .example('  $ vaultmesh tokens revoke 0123456789ab')
    .action(async (action: string, tokenId: string | undefined, f: TokensFlags) => {
      if (action === 'create') {
        if (!f.name || typeof f.name !== 'string') throw usage('tokens create needs --name');
        const scopes = parseScopes(f.scopes);
        const ttl = f.ttl !== undefined ? parseDuration(String(f.ttl)) : undefined;
        const api = createApiClient(apiOpts(f));
        const r = await api.post('/api/tokens', apiTokenCreatedAnswer, {
          name: f.name,
          scopes,
          ...(ttl !== undefined ? { ttl_secs: ttl } : {}),
        });
        write(
          f.json
            ? renderJson(r)
            : `${r.token}\n(id ${r.token_id}, name ${r.name}, scopes ${r.scopes.join(',')}, ${r.expires_at ? `expires ${r.expires_at}` : 'no expiry'}; shown once, store it safely)\n`,
        );
        return;
      }
      const api = createApiClient(apiOpts(f));
      if (action === 'list') {
        const list = await api.get('/api/tokens', apiTokensAnswer);
        write(f.json ? renderJson(list) : renderTable(list, ['token_id', 'name', 'scopes', 'status', 'expires_at', 'last_used', 'created_by']));
        return;
      }
      if (action === 'revoke') {
        if (!tokenId) throw usage('tokens revoke needs a token id (see tokens list)');
        const r = await api.del(`/api/tokens/${encodeURIComponent(tokenId)}`, apiTokenAnswer);
        write(f.json ? renderJson(r) : `${tokenId}: ${r.status}\n`);
        return;
      }
      throw usage(`unknown action tokens ${action}: use create, list or revoke`);
    });
}
