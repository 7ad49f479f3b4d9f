// The fleet as the ledgers' witnesses, with real agent processes: they accept and cosign checkpoints that extend
// the one they accepted, and every agent that witnessed a head catches a center whose scan history was rewritten
// and re-signed with the same key after a restart; nothing is cosigned past the fork.
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { parseNote } from '../protocol/signed-note.js';
import { verifyCosignature } from '../protocol/cosignature.js';
import { parseCheckpointText } from '../protocol/checkpoint.js';
import { summarize } from '../protocol/scan.js';
import { keyPairFromSeed, seedFromPem } from '../protocol/keys.js';
import { cleanupAfterEach, enrolledNode, startTestCenter, tempDir, type TestCenter } from './helpers.js';
import { AGENT_BIN, assertBuilt, runNode } from './process-helpers.js';
import { runLedger } from '../cli/commands/ledger.js';
import { Writable } from 'node:stream';

const onCleanup = cleanupAfterEach();
const NODES = ['wit-a', 'wit-b'];

function report(nodeId: string, id: string) {
  const now = new Date().toISOString();
  return { id, node_id: nodeId, started_at: now, finished_at: now, agent_version: '0.1.0', trigger: 'manual', findings: [], summary: summarize([], { checks_run: 1, checks_failed: 0 }) };
}

describe('agents as witnesses', () => {
  it('cosign growing checkpoints, and all catch a rewritten history re-signed with the same key', async () => {
    assertBuilt();
    const t = tempDir();
    onCleanup(t.cleanup);
    const settings = { ledgerHeadSecs: 3600, orchestratorTickSecs: 0, autoApprove: true, ledgerOrigin: 'cc.example.com/vaultmesh' };
    let c: TestCenter = await startTestCenter(t.dir, settings);
    onCleanup(() => c.close());
    const agent = (id: string, env: Record<string, string> = {}) =>
      runNode(AGENT_BIN, ['--once', '--cc-url', c.url, '--state-dir', join(t.dir, id), '--root', t.dir, '--node-id', id, '--cloudflared-check', 'none', '--settings', '/nonexistent'], env);
    const scans = async (ids: string[]) => {
      const scanner = await enrolledNode(c, `scanner-${ids[0]}`, { approve: false }); // auto-approved
      for (const id of ids) expect((await scanner.send('POST', '/api/agent/scan', report(scanner.id, id))).status).toBe(200);
      expect((await c.api('GET', `/api/ledger/proof/${ids.at(-1)}`)).status).toBe(200); // a head over them
    };
    const checkpoint = async () => (await request(`${c.url}/ledger/scans/checkpoint`, { headers: { authorization: `Bearer ${c.adminToken}` } }).then((r) => r.body.text()));
    const status = async () => {
      const chunks: string[] = [];
      const out = new Writable({ write: (d, _e, cb) => (chunks.push(String(d)), cb()) });
      const code = await runLedger('status', undefined, { ccUrl: c.url, token: c.adminToken }, { stdout: out, stderr: out, env: {}, setExitCode: () => undefined });
      expect(code, chunks.join('')).toBe(0);
      return chunks.join('');
    };
    const accepted = (id: string) => JSON.parse(readFileSync(join(t.dir, id, 'ledger-witness.json'), 'utf8')).scans.accepted;

    await scans(['h1-0', 'h1-1', 'h1-2', 'h1-3', 'h1-4']);
    const token = (await c.api('POST', '/api/join-tokens', { uses: 2 })).json.token as string;
    for (const id of NODES) {
      const first = await agent(id, { VAULTMESH_JOIN_TOKEN: token }); // enrolls, heartbeats, accepts and cosigns size 5
      expect(first.code, first.stderr).toBe(0);
      expect((await agent(id)).code).toBe(0); // hands its cosignature in
      expect(accepted(id).tree_size).toBe(5);
      expect(statSync(join(t.dir, id, 'ledger-witness.json')).mode & 0o777).toBe(0o600);
    }
    // The served checkpoint carries both cosignatures; each verifies with the node's enrolled key.
    const nodeKey = (id: string) => keyPairFromSeed(seedFromPem(readFileSync(join(t.dir, id, 'node-key.pem'), 'utf8'))).publicKey;
    const note = parseNote(await checkpoint());
    expect(parseCheckpointText(note.text).treeSize).toBe(5);
    const cosigs = note.signatures.filter((s) => s.name.startsWith('nodes.vaultmesh/'));
    expect(cosigs.map((s) => s.name).sort()).toEqual(NODES.map((n) => `nodes.vaultmesh/${n}`));
    for (const s of cosigs) expect(verifyCosignature(note.text, s, { name: s.name, publicKey: nodeKey(s.name.split('/')[1]!) })).toBeTypeOf('number');
    expect((await c.api('GET', '/api/ledger/witnesses')).json.scans).toMatchObject({ tree_size: 5, witnessed_latest: 2 });
    expect(await status()).toMatch(/^scans: checkpoint of 5 leaves, witnessed by 2 nodes\n/);

    // The log grows: the agents follow it with consistency proofs.
    await scans(['h1-5', 'h1-6', 'h1-7']);
    for (const id of NODES) {
      expect((await agent(id)).code).toBe(0);
      expect(accepted(id).tree_size).toBe(8);
    }
    const witnessed = accepted(NODES[0]!).root_hash;

    // The fork: the center stops, its scan history is cut back to 3 lines and re-signed from scratch with the same
    // key (the ledger files a forger would have to replace are removed), and it grows past the witnessed size.
    await c.close();
    const logs = join(t.dir, 'logs');
    const journal = join(logs, 'sovereign-scans.jsonl');
    writeFileSync(journal, readFileSync(journal, 'utf8').split('\n').slice(0, 3).join('\n') + '\n');
    for (const f of ['ROOT.txt', 'PROOFCHAIN.json', 'CHECKPOINT', 'sovereign-scans.leaves']) rmSync(join(logs, f), { force: true });
    c = await startTestCenter(t.dir, settings);
    await scans(['h2-0', 'h2-1', 'h2-2', 'h2-3', 'h2-4', 'h2-5', 'h2-6']);
    expect(parseCheckpointText(parseNote(await checkpoint()).text).treeSize).toBe(10);

    for (const id of NODES) {
      const r = await agent(id);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout + r.stderr).toMatch(/LEDGER FORK \(scans\): no valid consistency proof from size 8 to 10/);
      expect(accepted(id)).toMatchObject({ tree_size: 8, root_hash: witnessed }); // kept, not replaced
    }
    for (const id of NODES) expect((await agent(id)).code).toBe(0); // reported again: still one incident per node
    const incidents = (await c.api('GET', '/api/incidents')).json.items.filter((i: { title: string }) => i.title.startsWith('ledger_fork'));
    expect(incidents.map((i: { node_id: string }) => i.node_id).sort()).toEqual(NODES);
    // Nothing cosigned past the fork: the new checkpoint has no witness, the agents' cosignatures stay on size 8.
    expect(parseNote(await checkpoint()).signatures.map((s) => s.name)).toEqual(['cc.example.com/vaultmesh/scans']);
    const witnesses = (await c.api('GET', '/api/ledger/witnesses')).json.scans;
    expect(witnesses).toMatchObject({ tree_size: 10, witnessed_latest: 0, forks: [{ node_id: 'wit-a', tree_size: 8, reason: 'bad-proof', seen_size: 10 }, { node_id: 'wit-b', tree_size: 8 }] });
    expect(await status()).toMatch(/^scans: checkpoint of 10 leaves, witnessed by 0 nodes; FORK reported by wit-a \(accepted 8\), wit-b \(accepted 8\): see the ledger_fork incidents\n/);
  });
});
