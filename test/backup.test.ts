// The backup procedure of docs/DEPLOY.md, done on a running center: copy the ledger files first, then the journals,
// and check the copy offline with the CLI, as an operator would.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
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

/** The documented order: signed heads before journals, so every copied head covers lines the copy holds. */
function backup(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  const names = readdirSync(from);
  const ledgerFiles = names.filter((n) => /^(PROOFCHAIN|ROOT)/.test(n));
  for (const n of [...ledgerFiles, ...names.filter((n) => n.endsWith('.jsonl'))]) copyFileSync(join(from, n), join(to, n));
}

describe('a backup of a running center', () => {
  it('verifies offline with --allow-unsigned-tail (lines newer than the last head), and only with it', async () => {
    assertBuilt();
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir, { ledgerHeadSecs: 3600, orchestratorTickSecs: 0 });
    onCleanup(() => c.close());
    const n = await enrolledNode(c, 'web-01');
    expect((await n.send('POST', '/api/agent/scan', report('web-01', 'scan-1'))).status).toBe(200);
    await c.services.ledgers!.scans.flush(); // a signed head covering scan-1
    for (const id of ['scan-2', 'scan-3']) expect((await n.send('POST', '/api/agent/scan', report('web-01', id))).status).toBe(200);

    const copy = join(t.dir, 'backup');
    backup(c.config.logDir, copy);
    const strict = await runNode(CLI_BIN, ['ledger', 'verify', '--dir', copy]);
    expect(strict.code, strict.stdout + strict.stderr).not.toBe(0);
    expect(strict.stdout + strict.stderr).toMatch(/not covered by any signed head/);
    const lenient = await runNode(CLI_BIN, ['ledger', 'verify', '--dir', copy, '--allow-unsigned-tail']);
    expect(lenient.code, lenient.stdout + lenient.stderr).toBe(0);
    expect(lenient.stdout + lenient.stderr).toMatch(/not covered by any signed head/); // said, as a warning
  });
});
