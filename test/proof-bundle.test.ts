/** One proof bundle: the API and `vaultmesh ledger prove` build it with the same code, so they hand out the same bytes. */
import { describe, expect, it } from 'vitest';
import { summarize } from '../protocol/scan.js';
import { ledgerCheck, ledgerProve } from '../cli/ledger.js';
import { cleanupAfterEach, enrolledNode, startTestCenter, tempDir } from './helpers.js';

const onCleanup = cleanupAfterEach();

describe('proof bundles', () => {
  it('GET /api/ledger/proof/:id equals vaultmesh ledger prove on the same log dir, and checks', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir);
    onCleanup(() => c.close());
    const n = await enrolledNode(c, 'web-01');
    for (const id of ['scan-1', 'scan-2', 'scan-3']) {
      const now = new Date().toISOString();
      const findings = [{ check: 'ssh-hardening', severity: 'high' as const, title: `finding of ${id}`, detail: 'd', evidence: {} }];
      const r = await n.send('POST', '/api/agent/scan', { id, node_id: 'web-01', started_at: now, finished_at: now, agent_version: '0.1.0', trigger: 'manual', findings, summary: summarize(findings, { checks_run: 1, checks_failed: 0 }) });
      expect(r.status).toBe(200);
    }
    const api = (await c.api('GET', '/api/ledger/proof/scan-2')).json;
    const cli = await ledgerProve(c.config.logDir, 'scan-2');
    expect(JSON.stringify(api)).toBe(JSON.stringify(cli));
    expect(ledgerCheck(api, { pubkey: c.services.centerKey.publicKeyHex })).toMatchObject({ ok: true, leaf_index: 1, tree_size: 3 });
  });
});
