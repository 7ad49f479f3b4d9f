import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { summarize } from '../protocol/scan.js';
import { ledgerVerify } from '../cli/ledger.js';
import { cleanupAfterEach, composeTestCenter, enrolledNode, startTestCenter, tempDir } from '../test/helpers.js';
import { decideCenterKey, previousKeysPath } from './center-key.js';

const onCleanup = cleanupAfterEach();

function report(nodeId: string, id: string) {
  const now = new Date().toISOString();
  return { id, node_id: nodeId, started_at: now, finished_at: now, agent_version: '0.1.0', trigger: 'manual', findings: [], summary: summarize([], { checks_run: 1, checks_failed: 0 }) };
}

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isFile()) out[name] = readFileSync(p).toString('base64');
  }
  return out;
}

/** A center that wrote a scan under a signed head, then stopped; returns the old key. */
async function centerWithHistory(dir: string): Promise<{ publicKey: string; keyId: string }> {
  const c = await startTestCenter(dir, { orchestratorTickSecs: 0 });
  try {
    const n = await enrolledNode(c, 'web-01');
    expect((await n.send('POST', '/api/agent/scan', report('web-01', 'scan-1'))).status).toBe(200);
    await c.services.ledgers!.scans.flush();
    return { publicKey: c.services.centerKey.publicKeyHex, keyId: c.services.centerKey.keyId };
  } finally {
    await c.close();
  }
}

describe('decideCenterKey', () => {
  it('creates a key only on a first start, refuses a missing key beside journals unless told to replace it', () => {
    expect(decideCenterKey({ keyExists: true, journals: ['events.jsonl'], newCenterKey: true })).toBe('load');
    expect(decideCenterKey({ keyExists: false, journals: [], newCenterKey: false })).toBe('create');
    expect(decideCenterKey({ keyExists: false, journals: ['events.jsonl'], newCenterKey: false })).toBe('refuse');
    expect(decideCenterKey({ keyExists: false, journals: ['events.jsonl'], newCenterKey: true })).toBe('replace');
  });
});

describe('a lost state dir', () => {
  it('refuses to start, naming the old key_id and the way out, and writes no key and no token', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const old = await centerWithHistory(t.dir);
    const stateDir = join(t.dir, 'state');
    rmSync(stateDir, { recursive: true });
    const logsBefore = snapshot(join(t.dir, 'logs'));

    const err = await composeTestCenter(t.dir).then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string },
    );
    expect(err?.code).toBe('CENTER_KEY_MISSING');
    expect(err?.message).toContain(`key_id ${old.keyId}`);
    expect(err?.message).toContain('PROOFCHAIN.json');
    expect(err?.message).toMatch(/sovereign-scans\.jsonl/);
    expect(err?.message).toContain('"Backup and restore"');
    expect(err?.message).toContain('--new-center-key');
    expect(existsSync(join(stateDir, 'cc-key.pem'))).toBe(false);
    expect(existsSync(join(stateDir, 'admin.token'))).toBe(false);
    expect(readdirSync(stateDir).filter((n) => n !== '.lock')).toEqual([]);
    expect(snapshot(join(t.dir, 'logs'))).toEqual(logsBefore);
  });

  it('with --new-center-key: a new key and token, the old chains continued under it and still verifiable, and later starts need no flag', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const old = await centerWithHistory(t.dir);
    rmSync(join(t.dir, 'state'), { recursive: true });

    const c = await startTestCenter(t.dir, { newCenterKey: true, orchestratorTickSecs: 0 });
    const fresh = c.services.centerKey;
    expect(fresh.publicKeyHex).not.toBe(old.publicKey);
    expect(readFileSync(previousKeysPath(join(t.dir, 'state')), 'utf8')).toContain(`${old.publicKey}\n`);
    // Restarted before any new head: the recorded key still lets the ledgers load, without the flag.
    await c.close();
    const again = await startTestCenter(t.dir, { orchestratorTickSecs: 0 });
    onCleanup(() => again.close());
    expect(again.services.centerKey.publicKeyHex).toBe(fresh.publicKeyHex);
    const n = await enrolledNode(again, 'web-02');
    expect((await n.send('POST', '/api/agent/scan', report('web-02', 'scan-2'))).status).toBe(200);
    await again.services.ledgers!.scans.flush();

    const chain = JSON.parse(readFileSync(join(t.dir, 'logs', 'PROOFCHAIN.json'), 'utf8')) as { heads: Array<{ head: { key_id: string }; public_key: string }> };
    expect(chain.heads.map((h) => h.public_key)).toEqual([old.publicKey, fresh.publicKeyHex]);
    const verified = await ledgerVerify(join(t.dir, 'logs'), 'scans');
    expect(verified.problems).toEqual([]);
    expect(verified.ok).toBe(true);
  });
});
