/**
 * `vaultmesh tokens create|list|revoke`: scoped API tokens for bots and scripts (admin scope on the center).
 * The token is printed once by `create`; the center keeps only its hash.
 */
import { VaultMeshError } from '../../protocol/errors.js';
import { isScope, SCOPES } from '../../protocol/scopes.js';
import { apiOptionsFromFlags, createApiClient, type ApiOptions } from '../api-client.js';
import { apiTokenAnswer, apiTokenCreatedAnswer, apiTokensAnswer } from '../answers.js';
import { printOut, renderJson, renderTable } from '../output.js';
import { parseDuration, type CommonFlags } from './operator.js';

const write = (s: string) => printOut(s);
const usage = (msg: string) => new VaultMeshError('USAGE', msg);
const apiOpts = (f: CommonFlags): ApiOptions => apiOptionsFromFlags(f);

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
  const bad = list.filter((s) => !isScope(s));
  if (bad.length) throw usage(`unknown scope ${bad.join(', ')}: use ${SCOPES.join(', ')}`);
  return [...new Set(list)];
}

/** `vaultmesh tokens` (declared in cli/command-table.ts). */
export async function tokensAction(action: string, tokenId: string | undefined, f: TokensFlags): Promise<void> {
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
}
