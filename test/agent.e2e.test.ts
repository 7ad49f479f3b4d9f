import { join } from 'node:path';
import { readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCenter, tempDir, type TestCenter } from './helpers.js';
import { AGENT_BIN, CLI_BIN, runNode } from './process-helpers.js';

describe('real vaultmesh-agent and vaultmesh CLI processes against a center', () => {
  const t = tempDir();
  let c: TestCenter;
  beforeAll(async () => {
    c = await startTestCenter(t.dir);
  });
  afterAll(async () => {
    await c.close();
    t.cleanup();
  });

  const agent = (extra: string[] = [], env: Record<string, string> = {}) =>
    runNode(AGENT_BIN, ['--once', '--cc-url', c.url, '--state-dir', join(t.dir, 'agent'), '--root', t.dir, '--node-id', 'e2e-1', '--cloudflared-check', 'none', '--settings', '/nonexistent', ...extra], env);
  const cli = (args: string[]) => runNode(CLI_BIN, [...args, '--cc-url', c.url, '--state-dir', join(t.dir, 'state')]);

  it('--once without a join token fails clearly', async () => {
    const r = await agent();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/NO_JOIN_TOKEN/);
  });

  it('enrolls with a join token from the CLI, waits for approval, then heartbeats', async () => {
    const created = await cli(['join-token', 'create', '--ttl', '10m', '--uses', '1', '--json']);
    expect(created.code).toBe(0);
    const tok = JSON.parse(created.stdout);
    expect(Object.keys(tok)).toEqual(expect.arrayContaining(['token', 'expires_at', 'uses']));
    expect(tok.uses).toBe(1);

    const first = await agent([], { VAULTMESH_JOIN_TOKEN: tok.token });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/enrollment pending/);
    expect(statSync(join(t.dir, 'agent', 'node-key.pem')).mode & 0o777).toBe(0o600);

    const listed = await cli(['nodes', 'list', '--json']);
    expect(JSON.parse(listed.stdout)[0]).toMatchObject({ node_id: 'e2e-1', status: 'pending' });
    expect((await cli(['nodes', 'approve', 'e2e-1'])).code).toBe(0);

    const second = await agent();
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/heartbeat accepted/);
    const node = (await c.api('GET', '/api/nodes/e2e-1')).json;
    expect(node.status).toBe('ok');
    expect(node.metrics.mem_total_bytes).toBeGreaterThan(0);
    expect(node.metrics.disk_total_bytes).toBeGreaterThan(0);
    // Approved after it enrolled, it learns the center key (trust on first use) from its first accepted heartbeat.
    const state = JSON.parse(readFileSync(join(t.dir, 'agent', 'agent-state.json'), 'utf8'));
    expect(state.tofu_center_keys).toEqual([{ public_key: c.services.centerKey.publicKeyHex, key_id: c.services.centerKey.keyId }]);
    expect(second.stdout).toMatch(/trusting the center key/);
  });

  it('CLI errors: usage is exit 2, an unreachable center exit 1 with a clear message', async () => {
    expect((await cli(['nodes', 'frobnicate'])).code).toBe(2);
    const down = await runNode(CLI_BIN, ['nodes', 'list', '--cc-url', 'http://127.0.0.1:9', '--token', 'x']);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9/);
    const keys = await runNode(CLI_BIN, ['keys', 'show', '--json', '--state-dir', join(t.dir, 'state')]);
    expect(JSON.parse(keys.stdout)).toEqual({ public_key: c.services.centerKey.publicKeyHex, key_id: c.services.centerKey.keyId });
  });
});
