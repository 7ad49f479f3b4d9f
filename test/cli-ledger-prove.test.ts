// From `vaultmesh logs view` to `vaultmesh ledger prove` with the real CLI: --ids shows the envelope ids, and prove
// takes the seq that view always showed (seq:N or --seq N) as well as an id.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { summarize } from '../protocol/scan.js';
import { cleanupAfterEach, enrolledNode, startTestCenter, tempDir } from './helpers.js';
import { CLI_BIN, assertBuilt, runNode } from './process-helpers.js';

const onCleanup = cleanupAfterEach();

function report(nodeId: string, id: string) {
  const now = new Date().toISOString();
  return { id, node_id: nodeId, started_at: now, finished_at: now, agent_version: '0.1.0', trigger: 'manual', findings: [], summary: summarize([], { checks_run: 1, checks_failed: 0 }) };
}

describe('logs view --ids and ledger prove by seq', () => {
  it('shows ids on request, proves by seq:N and --seq N, and says which seq is missing', async () => {
    assertBuilt();
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir, { orchestratorTickSecs: 0 });
    const n = await enrolledNode(c, 'web-01');
    for (const id of ['scan-1', 'scan-2']) expect((await n.send('POST', '/api/agent/scan', report('web-01', id))).status).toBe(200);
    await c.close(); // flushes the ledger: a signed head covers both scans
    const dir = join(t.dir, 'logs');
    const cli = (...args: string[]) => runNode(CLI_BIN, [...args, '--dir', dir], { VAULTMESH_LOG_DIR: '' });

    const plain = await cli('logs', 'view', '--kind', 'scan');
    expect(plain.code, plain.stderr).toBe(0);
    const plainLines = plain.stdout.trim().split('\n');
    expect(plainLines).toHaveLength(2);
    for (const line of plainLines) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\S+\s+\d+\s+scan\s+web-01/); // unchanged: ts first

    const withIds = await cli('logs', 'view', '--kind', 'scan', '--ids');
    expect(withIds.code, withIds.stderr).toBe(0);
    const rows = withIds.stdout.trim().split('\n').map((line) => /^(\S+) +(\S+) +(\d+) +scan +web-01/.exec(line));
    expect(rows.map((m) => m?.[1])).toEqual(['scan-1', 'scan-2']);
    expect(withIds.stdout.trim().split('\n').map((l) => l.slice(38))).toEqual(plainLines);
    const seq2 = rows[1]![3]!;

    const bySeq = await cli('ledger', 'prove', `seq:${seq2}`);
    expect(bySeq.code, bySeq.stderr).toBe(0);
    expect(JSON.parse(bySeq.stdout).leaf_line).toContain('"id":"scan-2"');
    const out = join(t.dir, 'proof.json');
    const byFlag = await cli('ledger', 'prove', '--seq', seq2, '--out', out);
    expect(byFlag.code, byFlag.stderr).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(bySeq.stdout);
    const check = await cli('ledger', 'check', out);
    expect(check.stdout).toMatch(/^ok: scan scan-2 from web-01 is leaf 1 /);
    const byId = await cli('ledger', 'prove', rows[0]![1]!);
    expect(JSON.parse(byId.stdout).leaf_index).toBe(0);

    // seq 1 is the join token in events.jsonl, in no ledger.
    const missing = await cli('ledger', 'prove', 'seq:1');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no envelope with seq 1 in sovereign-scans\.jsonl/);

    for (const args of [['ledger', 'prove', 'seq:x'], ['ledger', 'prove', 'scan-1', '--seq', '2'], ['ledger', 'prove', '--seq', '0'], ['logs', 'view', '--ids', '--json'], ['logs', 'tail', '--ids']]) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
    }
  });
});
