import { describe, expect, it } from 'vitest';
import { cleanupAfterEach, enrolledNode, heartbeatBody, startTestCenter, tempDir } from './helpers.js';
import { CLI_BIN, assertBuilt, runNode } from './process-helpers.js';

const onCleanup = cleanupAfterEach();

describe('vaultmesh nodes and join-token', () => {
  it('approves several nodes at once, filters the list by status, explains ATTN, names --ttl', async () => {
    assertBuilt();
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir, { orchestratorTickSecs: 0 });
    onCleanup(() => c.close());
    const cli = (...args: string[]) => runNode(CLI_BIN, [...args, '--cc-url', c.url, '--token', c.adminToken]);
    for (const id of ['web-01', 'web-02', 'web-03']) await enrolledNode(c, id, { approve: false });

    const pending = await cli('nodes', 'list', '--status', 'pending', '--json');
    expect(JSON.parse(pending.stdout).map((n: { node_id: string }) => n.node_id)).toEqual(['web-01', 'web-02', 'web-03']);
    const bulk = await cli('nodes', 'approve', 'web-01', 'web-02', 'ghost', 'web-03');
    expect(bulk.code).toBe(1); // ghost failed; the others went through
    expect(bulk.stdout).toBe('web-01: approved\nweb-02: approved\nweb-03: approved\n');
    expect(bulk.stderr).toMatch(/ghost: .*no such node/);
    expect(JSON.parse((await cli('nodes', 'list', '--status', 'pending', '--json')).stdout)).toEqual([]);
    expect((await cli('nodes', 'list', '--status', 'sleepy')).code).toBe(2);

    // A full disk puts a node in attention; `nodes show` says why.
    const node = await enrolledNode(c, 'db-01');
    const hb = heartbeatBody('db-01');
    await node.send('POST', '/api/agent/heartbeat', { ...hb, metrics: { ...hb.metrics, disk_used_bytes: 99e9, disk_total_bytes: 100e9 } });
    const show = await cli('nodes', 'show', 'db-01');
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/^status +crit$/m);
    expect(show.stdout).toMatch(/^attention +crit: .*disk.*\(/m);

    const ttl = await cli('join-token', 'create', '--ttl', '5s');
    expect(ttl.code).toBe(2);
    expect(ttl.stderr).toMatch(/--ttl must be from 1m to 30d, not 5s/);
  });

  it('a wrong or revoked token is named as such, not as a missing identity', async () => {
    assertBuilt();
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir, { orchestratorTickSecs: 0 });
    onCleanup(() => c.close());
    const wrong = await runNode(CLI_BIN, ['nodes', 'list', '--cc-url', c.url, '--token', 'vmadmin_not-the-token'], { VAULTMESH_TOKEN: '' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toBe('vaultmesh: 401: the bearer token is not valid (unknown, revoked or expired)\n  code: UNAUTHORIZED\n');

    const bot = await c.api('POST', '/api/tokens', { name: 'ci-bot', scopes: ['nodes:read'] });
    expect((await runNode(CLI_BIN, ['nodes', 'list', '--cc-url', c.url], { VAULTMESH_TOKEN: bot.json.token })).code).toBe(0);
    await c.api('DELETE', `/api/tokens/${bot.json.token_id}`);
    const revoked = await runNode(CLI_BIN, ['nodes', 'list', '--cc-url', c.url], { VAULTMESH_TOKEN: bot.json.token });
    expect(revoked.stderr).toMatch(/^vaultmesh: 401: the bearer token is not valid/);

    // No token at all is still the missing identity.
    const none = await fetch(`${c.url}/api/nodes`);
    expect(((await none.json()) as { error: { message: string } }).error.message).toMatch(/an operator identity is required/);
  });
});
