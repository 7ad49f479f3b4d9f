import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { summarize, type Finding } from '../../protocol/scan.js';
import { ledgerCheck, ledgerVerify } from '../../cli/ledger.js';
import { enrolledNode, openSse, startTestCenter, tempDir, testNode, cleanupAfterEach } from '../../test/helpers.js';

const onCleanup = cleanupAfterEach();

function report(nodeId: string, id: string, findings: Finding[]) {
  const now = new Date().toISOString();
  return { id, node_id: nodeId, started_at: now, finished_at: now, agent_version: '0.1.0', trigger: 'manual', findings, summary: summarize(findings, { checks_run: 3, checks_failed: 0 }) };
}

const finding = (severity: Finding['severity'], title: string): Finding => ({ check: 'ssh-hardening', severity, title, detail: 'd', evidence: { file: '/etc/ssh/sshd_config' } });

describe('scan ingestion and the ledger API', () => {
  it('a signed scan lands in sovereign-scans.jsonl, the node state, SSE and the ledger, with a checkable proof', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir);
    onCleanup(() => c.close());
    const n = await enrolledNode(c, 'web-01');
    const sse = await openSse(`${c.url}/events?kind=scan`, { authorization: `Bearer ${c.adminToken}` });
    onCleanup(() => sse.close());

    const r1 = await n.send('POST', '/api/agent/scan', report('web-01', 'scan-1', [finding('high', 'PermitRootLogin yes'), finding('info', 'baseline created')]));
    expect(r1.status).toBe(200);
    await sse.waitFor((e) => e.event === 'scan' && JSON.parse(e.data).id === 'scan-1');
    const r2 = await n.send('POST', '/api/agent/scan', report('web-01', 'scan-2', [finding('medium', 'PasswordAuthentication yes')]));
    expect(r2.status).toBe(200);

    const node = (await c.api('GET', '/api/nodes/web-01')).json;
    expect(node.latest_scan).toMatchObject({ id: 'scan-2', summary: { medium: 1 } });
    expect(node.latest_scan.open_findings.map((f: Finding) => f.title)).toEqual(['PasswordAuthentication yes']);
    expect(readFileSync(join(c.config.logDir, 'sovereign-scans.jsonl'), 'utf8').trimEnd().split('\n')).toHaveLength(2);

    const proof = (await c.api('GET', '/api/ledger/proof/scan-1')).json;
    expect(proof.leaf_index).toBe(0);
    expect(ledgerCheck(proof)).toMatchObject({ ok: true });
    expect(ledgerCheck({ ...proof, leaf_line: proof.leaf_line.replace('PermitRootLogin', 'PermitRootLogon') }).ok).toBe(false);

    const root = (await c.api('GET', '/api/ledger/root')).json;
    expect(root).toMatchObject({ tree_size: 2, root_hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect((await c.api('GET', '/api/ledger/proof/nope')).status).toBe(404);
    expect((await c.api('GET', '/api/ledger/proof/..%2F..%2Fetc')).status).toBe(400);

    const dup = await n.send('POST', '/api/agent/scan', report('web-01', 'scan-2', []));
    expect(dup.json.duplicate).toBe(true);
    await c.close();
    // The files the center wrote verify offline, and a restart reproduces the same root.
    expect((await ledgerVerify(c.config.logDir, 'scans')).ok).toBe(true);
    const c2 = await startTestCenter(t.dir);
    onCleanup(() => c2.close());
    expect((await c2.api('GET', '/api/ledger/root')).json).toMatchObject({ tree_size: 2, root_hash: root.root_hash });
  });

  it('rejects a malformed report, a report for another node, and unsigned posts', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir);
    onCleanup(() => c.close());
    const n = await enrolledNode(c, 'a');
    await enrolledNode(c, 'b');
    const bad = await n.send('POST', '/api/agent/scan', { ...report('a', 's1', [finding('high', 'x')]), summary: { critical: 9 } });
    expect(bad.status).toBe(400);
    const other = await n.send('POST', '/api/agent/scan', report('b', 's2', []));
    expect(other.status).toBe(403);
    expect((await n.send('POST', '/api/agent/scan', report('a', 's-ok', []))).status).toBe(200);
    const b = await enrolledNode(c, 'b2');
    const conflict = await b.send('POST', '/api/agent/scan', report('b2', 's-ok', []));
    expect(conflict.status).toBe(409);
    expect(conflict.json.error.code).toBe('ID_CONFLICT');
    const stranger = await testNode(c, 'a').send('POST', '/api/agent/scan', report('a', 's3', []));
    expect(stranger.status).toBe(401);
    expect((await c.api('GET', '/api/ledger/root')).json.tree_size).toBe(1);
  });
});
