// Pushing checkpoints to an external tlog-witness witness (c2sp.org/tlog-witness), against a minimal witness that
// implements the spec's checks: cosignatures come back and are served with the checkpoint; after a restart the
// center learns the witness's size from a 409 and proves consistency from it; a rewritten log is refused (422).
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { parseCheckpointText } from '../protocol/checkpoint.js';
import { verifyCosignature } from '../protocol/cosignature.js';
import { parseNote } from '../protocol/signed-note.js';
import { summarize } from '../protocol/scan.js';
import { resolveCenterConfig } from '../command-center/config.js';
import { cleanupAfterEach, enrolledNode, startTestCenter, tempDir, type TestCenter } from './helpers.js';
import { startMinimalWitness } from './minimal-witness.js';

const onCleanup = cleanupAfterEach();

function report(nodeId: string, id: string) {
  const now = new Date().toISOString();
  return { id, node_id: nodeId, started_at: now, finished_at: now, agent_version: '0.1.0', trigger: 'manual', findings: [], summary: summarize([], { checks_run: 1, checks_failed: 0 }) };
}

describe('external witnesses (tlog-witness)', () => {
  it('get each new checkpoint with a consistency proof and cosign it; a rewritten log is refused', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    // The center's key is made on first start; the witness must trust it, so start once to read it.
    let c: TestCenter = await startTestCenter(t.dir, { orchestratorTickSecs: 0, ledgerOrigin: 'cc.example.com/vaultmesh' });
    const centerKey = c.services.centerKey.publicKey;
    await c.close();
    const w = await startMinimalWitness({ 'cc.example.com/vaultmesh/scans': centerKey, 'cc.example.com/vaultmesh/commands': centerKey });
    onCleanup(() => w.close());
    const settings = { ledgerHeadSecs: 3600, orchestratorTickSecs: 0, ledgerOrigin: 'cc.example.com/vaultmesh', ledgerWitnesses: `${w.url} ${w.vkey}` };
    const start = async () => {
      c = await startTestCenter(t.dir, settings);
      onCleanup(() => c.close());
    };
    const scans = async (ids: string[]) => {
      const node = await enrolledNode(c, `n-${ids[0]}`);
      for (const id of ids) expect((await node.send('POST', '/api/agent/scan', report(node.id, id))).status).toBe(200);
      expect((await c.api('GET', `/api/ledger/proof/${ids.at(-1)}`)).status).toBe(200); // a head: pushed at once
    };
    const scansSize = () => w.state.get('cc.example.com/vaultmesh/scans')?.size;
    const served = async () => parseNote(await request(`${c.url}/ledger/scans/checkpoint`, { headers: { authorization: `Bearer ${c.adminToken}` } }).then((r) => r.body.text()));

    await start();
    await scans(['a0', 'a1', 'a2']);
    await w.waitFor(() => scansSize() === 3);
    let note = served();
    const cosig = (await note).signatures.find((s) => s.name === w.name);
    expect(cosig, 'the witness cosignature is served with the checkpoint').toBeDefined();
    expect(verifyCosignature((await note).text, cosig!, { name: w.name, publicKey: w.key.publicKey })).toBeTypeOf('number');
    expect((await c.api('GET', '/api/ledger/witnesses')).json.scans.external).toEqual([{ name: w.name, tree_size: 3, timestamp: expect.any(Number) }]);

    // A restart forgets the witness's size: `old 0` gets 409 with its size, then the proof from it is accepted.
    await c.close();
    await start();
    const before = w.statuses.length;
    await scans(['b0', 'b1']);
    await w.waitFor(() => scansSize() === 5);
    expect(w.statuses.slice(before)).toEqual(expect.arrayContaining([409, 200]));
    expect(w.statuses.slice(before)).not.toContain(422);
    note = served();
    expect(parseCheckpointText((await note).text).treeSize).toBe(5);
    expect((await note).signatures.map((s) => s.name)).toContain(w.name);

    // A rewritten history re-signed with the same key: the witness refuses the proof, nothing is cosigned.
    await c.close();
    const logs = join(t.dir, 'logs');
    const journal = join(logs, 'sovereign-scans.jsonl');
    writeFileSync(journal, readFileSync(journal, 'utf8').split('\n').slice(0, 2).join('\n') + '\n');
    for (const f of ['ROOT.txt', 'PROOFCHAIN.json', 'CHECKPOINT', 'sovereign-scans.leaves']) rmSync(join(logs, f), { force: true });
    await start();
    const atFork = w.statuses.length;
    await scans(['c0', 'c1', 'c2', 'c3', 'c4', 'c5']);
    await w.waitFor((x) => x.statuses.slice(atFork).includes(422));
    expect(scansSize()).toBe(5);
    expect((await served()).signatures.map((s) => s.name)).toEqual(['cc.example.com/vaultmesh/scans']);
  });

  it('refuses a malformed witness setting at start-up', () => {
    expect(() => resolveCenterConfig({ ledgerWitnesses: 'https://w.example nope' }, {})).toThrow(/VAULTMESH_LEDGER_WITNESSES.*invalid witness/);
    expect(() => resolveCenterConfig({ ledgerWitnesses: 'https://w.example cc.example.com/vaultmesh/scans+7f42e40c+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c' }, {})).toThrow(/type 0x04/);
  });
});
