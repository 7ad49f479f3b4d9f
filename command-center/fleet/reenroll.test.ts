import { describe, expect, it } from 'vitest';
import { startTestCenter, tempDir, testNode, cleanupAfterEach } from '../../test/helpers.js';

const onCleanup = cleanupAfterEach();

describe('a revoked node enrolling again', () => {
  it('is never auto-approved and never receives its predecessor’s commands', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir, { autoApprove: true, orchestratorTickSecs: 0 });
    onCleanup(() => c.close());
    const token = (await c.api('POST', '/api/join-tokens', { uses: 5 })).json.token;
    const enroll = (n: ReturnType<typeof testNode>) =>
      n.send('POST', '/api/agent/enroll', { token, node_id: 'web1', hostname: 'web1', os_profile: 'debian', public_key: n.key.publicKeyHex, agent_version: '0.1.0', facts: {} });
    const original = testNode(c, 'web1');
    expect((await enroll(original)).json.status).toBe('approved');
    const cmd = await c.api('POST', '/api/commands', { node_id: 'web1', action: 'ping', args: {} });
    expect(cmd.status).toBe(201);
    expect(cmd.json.id).toMatch(/^cmd-/);
    expect((await c.api('POST', '/api/nodes/web1/revoke')).status).toBe(200);

    await new Promise((r) => setTimeout(r, 5)); // the new enrollment is strictly later than the command
    const impostor = testNode(c, 'web1');
    const again = await enroll(impostor);
    expect(again.status).toBe(202);
    expect(again.json.status).toBe('pending');
    expect((await c.api('POST', '/api/nodes/web1/approve')).status).toBe(200);
    const polled = await impostor.send('GET', '/api/agent/commands?wait=0');
    expect(polled.status).toBe(200);
    expect(JSON.stringify(polled.json)).not.toContain(cmd.json.id);
  });
});
