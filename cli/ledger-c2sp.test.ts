import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { summarize } from '../protocol/scan.js';
import { cleanupAfterEach, enrolledNode, startTestCenter, tempDir } from '../test/helpers.js';
import { runLedger } from './commands/ledger.js';

const onCleanup = cleanupAfterEach();

function capture() {
  const chunks: string[] = [];
  return { stream: new Writable({ write: (c, _e, cb) => (chunks.push(String(c)), cb()) }), text: () => chunks.join('') };
}
async function run(action: string, flags: Record<string, unknown>) {
  const out = capture();
  const err = capture();
  const code = await runLedger(action, undefined, flags, { stdout: out.stream, stderr: err.stream, env: {}, setExitCode: () => undefined });
  return { code, out: out.text(), err: err.text() };
}
function report(nodeId: string, id: string) {
  const now = new Date().toISOString();
  return { id, node_id: nodeId, started_at: now, finished_at: now, agent_version: '0.1.0', trigger: 'manual', findings: [], summary: summarize([], { checks_run: 1, checks_failed: 0 }) };
}
function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(dir, join(prefix, e.name)) : [join(prefix, e.name)])).sort();
}

describe('vaultmesh ledger vkey | tiles', () => {
  it('prints the verifier key the center serves and writes, offline, the same static tree the center serves', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir, { ledgerHeadSecs: 3600, orchestratorTickSecs: 0, ledgerOrigin: 'cc.example.com/vaultmesh' });
    onCleanup(() => c.close());
    const node = await enrolledNode(c, 'web-01');
    for (let i = 0; i < 258; i++) expect((await node.send('POST', '/api/agent/scan', report('web-01', `scan-${i}`))).status).toBe(200);
    expect((await c.api('GET', '/api/ledger/proof/scan-257')).status).toBe(200);
    const served = new Map<string, Buffer>();
    for (const path of ['checkpoint', 'tile/0/000', 'tile/0/001.p/2', 'tile/1/000.p/1', 'tile/entries/000', 'tile/entries/001.p/2']) {
      const res = await request(`${c.url}/ledger/scans/${path}`, { headers: { authorization: `Bearer ${c.adminToken}` } });
      expect(res.statusCode, path).toBe(200);
      served.set(path, Buffer.from(await res.body.arrayBuffer()));
    }
    const api = (await c.api('GET', '/api/ledger/vkey')).json;
    await c.close();
    const logs = join(t.dir, 'logs');

    const vkey = await run('vkey', { dir: logs });
    expect(vkey).toMatchObject({ code: 0, out: `${api.scans.vkey}\n` });
    const fromSettings = await run('vkey', { origin: 'cc.example.com/vaultmesh', pubkey: api.scans.public_key, log: 'commands', json: true });
    expect(JSON.parse(fromSettings.out)).toEqual({ log: 'commands', origin: 'cc.example.com/vaultmesh/commands', vkey: api.commands.vkey });
    expect((await run('vkey', { origin: 'https://cc.example.com/', pubkey: api.scans.public_key })).code).toBe(2);

    const out = join(t.dir, 'static');
    const tiles = await run('tiles', { dir: logs, out });
    expect(tiles.code, tiles.err).toBe(0);
    expect(tiles.out).toMatch(/scans: checkpoint of 258 leaves, 3 hash tiles, 2 entry bundles/);
    expect(filesUnder(join(out, 'scans'))).toEqual(['checkpoint', 'tile/0/000', 'tile/0/001.p/2', 'tile/1/000.p/1', 'tile/entries/000', 'tile/entries/001.p/2']);
    for (const [path, bytes] of served) expect(readFileSync(join(out, 'scans', path)).equals(bytes), path).toBe(true);
    expect(tiles.err).toMatch(/commands: no signed head yet, skipped/);
    const empty = await run('tiles', { dir: logs, out, log: 'commands', pubkey: api.commands.public_key });
    expect(empty.code, empty.err).toBe(0);
    expect(readFileSync(join(out, 'commands', 'checkpoint'), 'utf8')).toMatch(/^cc\.example\.com\/vaultmesh\/commands\n0\n47DEQpj8HBSa\+\/TImW\+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n/);

    // A journal that no longer hashes to the checkpoint is refused, not published.
    const journal = join(logs, 'sovereign-scans.jsonl');
    writeFileSync(journal, readFileSync(journal, 'utf8').replace('scan-5"', 'scan-X"'));
    const bad = await run('tiles', { dir: logs, out: join(t.dir, 'bad'), log: 'scans' });
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/do not hash to the checkpoint's root/);
    // A checkpoint that does not verify with the pinned key is refused.
    const pinned = await run('vkey', { dir: logs, pubkey: '00'.repeat(32) });
    expect(pinned.code).toBe(1);
  });
});
