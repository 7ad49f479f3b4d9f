import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach, startTestCenter, tempDir } from './helpers.js';
import { AGENT_BIN, assertBuilt } from './process-helpers.js';

const onCleanup = cleanupAfterEach();

describe('stopping the agent daemon', () => {
  it('ends a held command long-poll at once and reports nothing as a failure', async () => {
    assertBuilt();
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir, { autoApprove: true, orchestratorTickSecs: 0 });
    onCleanup(() => c.close());
    const token = (await c.api('POST', '/api/join-tokens', { uses: 1 })).json.token;
    const agent = spawn(process.execPath, [AGENT_BIN, '--cc-url', c.url, '--state-dir', join(t.dir, 'agent'), '--root', t.dir, '--node-id', 'n1', '--cloudflared-check', 'none', '--settings', '/nonexistent', '--command-poll-secs', '25'], {
      env: { ...process.env, VAULTMESH_JOIN_TOKEN: token },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    onCleanup(() => void agent.kill('SIGKILL'));
    let out = '';
    agent.stdout.on('data', (d) => (out += d));
    agent.stderr.on('data', (d) => (out += d));
    // Wait until the agent holds a long-poll on the center (its first heartbeat was accepted).
    for (let i = 0; i < 200 && !(c.services.state.nodes.get('n1')?.heartbeat_count); i++) await new Promise((r) => setTimeout(r, 25));
    expect(c.services.state.nodes.get('n1')?.heartbeat_count).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    agent.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => agent.on('exit', (c2) => r(c2)));
    const tookMs = Date.now() - t0;
    expect(code).toBe(0);
    expect(tookMs, out).toBeLessThan(2000); // was ≈ 4–7 s: a backoff wait that the abort never cut short
    expect(out).toMatch(/stopped\n$/);
    expect(out).not.toMatch(/poll failed|CC_UNREACHABLE/);
  });
});
