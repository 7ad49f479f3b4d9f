/** Process tests: the built `vaultmesh tokens` against an in-process center. */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCenter, tempDir, type TestCenter } from '../../test/helpers.js';
import { CLI_BIN, rebuildDist, runNode } from '../../test/process-helpers.js';
import { parseScopes } from './tokens.js';

let c: TestCenter;
let cleanup: () => void;

beforeAll(async () => {
  rebuildDist();
  const t = tempDir();
  cleanup = t.cleanup;
  c = await startTestCenter(t.dir);
}, 120_000);

afterAll(async () => {
  await c?.close();
  cleanup?.();
});

const cli = (...args: string[]) => runNode(CLI_BIN, ['tokens', ...args, '--cc-url', c.url, '--state-dir', join(c.dir, 'state')], { VAULTMESH_TOKEN: '' });

describe('vaultmesh tokens', () => {
  it('create --json prints the token once; list shows it without the secret; revoke ends it', async () => {
    const created = await cli('create', '--name', 'ci-bot', '--scopes', 'events:write,nodes:read', '--ttl', '30d', '--json');
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const r = JSON.parse(created.stdout);
    expect(r.token).toMatch(/^vmtok_/);
    expect(r.scopes).toEqual(['events:write', 'nodes:read']);
    expect(Date.parse(r.expires_at) - Date.now()).toBeGreaterThan(29 * 86_400_000);

    const asBot = await runNode(CLI_BIN, ['nodes', 'list', '--json', '--cc-url', c.url], { VAULTMESH_TOKEN: r.token });
    expect(asBot.code).toBe(0);
    const denied = await runNode(CLI_BIN, ['tokens', 'list', '--cc-url', c.url], { VAULTMESH_TOKEN: r.token });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/403: this action needs the admin scope/);

    const list = await cli('list');
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/TOKEN_ID\s+NAME\s+SCOPES\s+STATUS/);
    expect(list.stdout).toContain('ci-bot');
    expect(list.stdout).not.toContain(r.token);

    const revoked = await cli('revoke', r.token_id);
    expect(revoked.stdout).toBe(`${r.token_id}: revoked\n`);
    const after = await runNode(CLI_BIN, ['nodes', 'list', '--cc-url', c.url], { VAULTMESH_TOKEN: r.token });
    expect(after.code).toBe(1);
    expect(after.stderr).toMatch(/401/);
  });

  it('usage errors exit 2 with one line', async () => {
    for (const args of [['create', '--scopes', 'admin'], ['create', '--name', 'x', '--scopes', 'root'], ['create', '--name', 'x'], ['create', '--name', 'x', '--scopes', 'admin', '--ttl', 'forever'], ['revoke'], ['explode']]) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
  });

  it('parseScopes', () => {
    expect(parseScopes('nodes:read, events:write,nodes:read')).toEqual(['nodes:read', 'events:write']);
    expect(() => parseScopes('')).toThrow(/required/);
  });
});
