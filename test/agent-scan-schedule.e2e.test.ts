import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openSse, startTestCenter, tempDir, cleanupAfterEach } from './helpers.js';
import { AGENT_BIN } from './process-helpers.js';

const onCleanup = cleanupAfterEach();

describe('the agent’s own scan schedule', () => {
  it('runs a sovereign scan every --scan-interval-secs and uploads it (trigger "schedule")', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir, { autoApprove: true, orchestratorTickSecs: 0 });
    onCleanup(() => c.close());
    const token = (await c.api('POST', '/api/join-tokens', { uses: 1 })).json.token;
    const scanConfig = join(t.dir, 'scan.json');
    // Keep the scan small: this box's own / would take seconds to walk.
    writeFileSync(scanConfig, JSON.stringify({ mounts: [t.dir], worldWritableRoots: [t.dir], integrityPaths: [] }));
    const sse = await openSse(`${c.url}/events?kind=scan`, { authorization: `Bearer ${c.adminToken}` });
    onCleanup(() => sse.close());
    const agent = spawn(process.execPath, [AGENT_BIN, '--cc-url', c.url, '--join-token', token, '--state-dir', join(t.dir, 'agent'), '--root', t.dir,
      '--node-id', 'sched-1', '--os-profile', 'debian', '--cloudflared-check', 'none', '--settings', '/nonexistent', '--heartbeat-secs', '1',
      '--scan-interval-secs', '1', '--scan-config', scanConfig], { stdio: 'ignore' });
    onCleanup(() => new Promise<void>((r) => (agent.exitCode !== null ? r() : (agent.once('exit', () => r()), agent.kill('SIGTERM')))));
    const ev = await sse.waitFor((e) => e.event === 'scan', 20_000);
    const env = JSON.parse(ev.data);
    expect(env).toMatchObject({ node_id: 'sched-1', body: { trigger: 'schedule', node_id: 'sched-1' } });
    expect((await c.api('GET', '/api/nodes/sched-1')).json.latest_scan.trigger).toBe('schedule');
  }, 30_000);
});
