/**
 * Ill-formed UTF-16 (a lone surrogate, `"\ud800"` in JSON text) in any string of any JSON body is refused at the
 * edge with 400 VALIDATION_ERROR, before anything is journaled: no seq is consumed, so the journal has no gap.
 * Against a real center over HTTP, for each endpoint an agent or an operator can reach with text of its own.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach, enrolledNode, heartbeatBody, startTestCenter, tempDir, testNode } from './helpers.js';

const onCleanup = cleanupAfterEach();
const LONE = '\ud800';
const LONE_LOW = 'x\udfffy';

function journalBytes(dir: string): number {
  const logs = join(dir, 'logs');
  return readdirSync(logs).filter((f) => f.endsWith('.jsonl')).reduce((n, f) => n + statSync(join(logs, f)).size, 0);
}

describe('lone surrogates in JSON bodies', () => {
  it('are 400 VALIDATION_ERROR on every endpoint, nothing journaled, no seq consumed', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir, { fsync: 'off' });
    onCleanup(() => c.close());
    const node = await enrolledNode(c, 'web-01');
    expect((await node.send('POST', '/api/agent/heartbeat', heartbeatBody('web-01'))).status).toBe(200);
    const joinToken = (await c.api('POST', '/api/join-tokens', { uses: 5 })).json.token as string;
    const seqBefore = (await c.api('GET', '/healthz')).json.seq as number;
    const bytesBefore = journalBytes(t.dir);

    const now = new Date().toISOString();
    const finding = { check: 'ssh-hardening', severity: 'low', title: `weak ${LONE}`, detail: '', evidence: {} };
    const scan = { node_id: 'web-01', started_at: now, finished_at: now, agent_version: '0.1.0', trigger: 'manual', findings: [finding], summary: { critical: 0, high: 0, medium: 0, low: 1, info: 0, checks_run: 1, checks_failed: 0 } };
    const newcomer = testNode(c, 'web-02');
    const enroll = (extra: Record<string, unknown>) => ({ token: joinToken, node_id: 'web-02', hostname: 'web-02.example', os_profile: 'debian', public_key: newcomer.key.publicKeyHex, agent_version: '0.1.0', facts: {}, ...extra });

    const answers: Array<[string, { status: number; json: any }]> = [
      ['heartbeat hostname', await node.send('POST', '/api/agent/heartbeat', heartbeatBody('web-01', { hostname: `web${LONE}` }))],
      ['heartbeat agent_version', await node.send('POST', '/api/agent/heartbeat', heartbeatBody('web-01', { agent_version: `0.1${LONE}` }))],
      ['heartbeat services key', await node.send('POST', '/api/agent/heartbeat', heartbeatBody('web-01', { services: { 'nginx.service': `active${LONE_LOW}` } }))],
      ['scan title', await node.send('POST', '/api/agent/scan', scan)],
      ['enroll hostname', await newcomer.send('POST', '/api/agent/enroll', enroll({ hostname: `web-02${LONE}` }))],
      ['enroll fact', await newcomer.send('POST', '/api/agent/enroll', enroll({ facts: { kernel: LONE_LOW } }))],
      ['join-token label', await c.api('POST', '/api/join-tokens', { uses: 1, label: `lab${LONE}` })],
      ['note text', await c.api('POST', '/api/events', { kind: 'note', body: { text: `hi ${LONE}` } })],
      ['incident title', await c.api('POST', '/api/events', { kind: 'incident', body: { title: LONE_LOW, severity: 'low' } })],
      ['an object key', await c.api('POST', '/api/events', { kind: 'note', body: { text: 'hi', [`k${LONE}`]: 1 } })],
      ['api token name', await c.api('POST', '/api/tokens', { name: `bot${LONE}`, scopes: ['nodes:read'] })],
      ['command arg', await c.api('POST', '/api/commands', { node_id: 'web-01', action: 'ping', args: { note: LONE } })],
    ];
    for (const [what, r] of answers) {
      expect({ what, status: r.status, code: r.json?.error?.code }).toEqual({ what, status: 400, code: 'VALIDATION_ERROR' });
      expect(r.json.error.message, what).toMatch(/ill-formed UTF-16|lone surrogate/);
    }
    expect((await c.api('GET', '/healthz')).json.seq).toBe(seqBefore);
    expect(journalBytes(t.dir)).toBe(bytesBefore);
    // The next fact takes the next seq: no gap.
    const ok = await c.api('POST', '/api/events', { kind: 'note', body: { text: 'after' } });
    expect(ok.status).toBe(201);
    expect(ok.json.envelope.seq).toBe(seqBefore + 1);
  });
});

describe('the journal path', () => {
  it('refuses an envelope it cannot canonicalise without taking a seq', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir, { fsync: 'off' });
    onCleanup(() => c.close());
    const first = await c.services.submit({ kind: 'note', author: 'test', body: { text: 'one' } });
    // Straight to submit, past the HTTP edge: the journal itself must not leave a gap.
    await expect(c.services.submit({ kind: 'note', author: 'test', body: { text: LONE } })).rejects.toMatchObject({ code: 'VALIDATION_ERROR', status: 400 });
    const next = await c.services.submit({ kind: 'note', author: 'test', body: { text: 'two' } });
    expect(next.envelope.seq).toBe(first.envelope.seq + 1);
  });
});
