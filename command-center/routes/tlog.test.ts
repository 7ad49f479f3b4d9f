import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../protocol/checkpoint.js';
import { leafHash, verifyConsistency } from '../../protocol/merkle.js';
import { summarize, type Finding } from '../../protocol/scan.js';
import { ed25519NoteVerifier } from '../../protocol/signed-note.js';
import { decodeEntryBundle } from '../../protocol/tiles.js';
import { cleanupAfterEach, enrolledNode, startTestCenter, tempDir, type TestCenter, type TestNode } from '../../test/helpers.js';

const onCleanup = cleanupAfterEach();

async function center(overrides: Record<string, unknown> = {}): Promise<TestCenter> {
  const t = tempDir();
  onCleanup(t.cleanup);
  const c = await startTestCenter(t.dir, { ledgerHeadSecs: 3600, orchestratorTickSecs: 0, ledgerOrigin: 'cc.example.com/vaultmesh', ...overrides });
  onCleanup(() => c.close());
  return c;
}

function report(nodeId: string, id: string, findings: Finding[] = []) {
  const now = new Date().toISOString();
  return { id, node_id: nodeId, started_at: now, finished_at: now, agent_version: '0.1.0', trigger: 'manual', findings, summary: summarize(findings, { checks_run: 1, checks_failed: 0 }) };
}

/** Posts `n` scans and has the center sign a head over them (the proof endpoint publishes one when needed). */
async function scans(c: TestCenter, node: TestNode, n: number, from = 0): Promise<void> {
  for (let i = from; i < from + n; i++) expect((await node.send('POST', '/api/agent/scan', report(node.id, `scan-${i}`))).status).toBe(200);
  expect((await c.api('GET', `/api/ledger/proof/scan-${from + n - 1}`)).status).toBe(200);
}

async function get(c: TestCenter, path: string, headers: Record<string, string> = {}) {
  const res = await request(c.url + path, { headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body };
}
const auth = (c: TestCenter) => ({ authorization: `Bearer ${c.adminToken}` });
const journalLines = (c: TestCenter) => readFileSync(join(c.dir, 'logs', 'sovereign-scans.jsonl')).toString('utf8').split('\n').slice(0, -1);

describe('C2SP checkpoints and tiles', () => {
  it('serves a checkpoint that opens with the verifier key of /api/ledger/vkey, matching ROOT.txt and the CHECKPOINT file', async () => {
    const c = await center();
    const node = await enrolledNode(c, 'web-01');
    await scans(c, node, 3);
    const vkey = await c.api('GET', '/api/ledger/vkey');
    expect(vkey.status).toBe(200);
    expect(vkey.json.scans.origin).toBe('cc.example.com/vaultmesh/scans');
    expect(vkey.json.scans.vkey).toMatch(/^cc\.example\.com\/vaultmesh\/scans\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$/);
    const r = await get(c, '/ledger/scans/checkpoint', auth(c));
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    const note = r.body.toString('utf8');
    const { checkpoint } = openCheckpoint(note, [ed25519NoteVerifier(vkey.json.scans.vkey)], 'cc.example.com/vaultmesh/scans');
    const root = readFileSync(join(c.dir, 'logs', 'ROOT.txt'), 'utf8');
    expect(root).toBe(`tree_size ${checkpoint.treeSize}\nroot_hash ${checkpoint.rootHash.toString('hex')}\n`);
    expect(checkpoint.treeSize).toBe(3);
    expect(readFileSync(join(c.dir, 'logs', 'CHECKPOINT'), 'utf8')).toBe(note);
    // The commands log has its own origin, and an empty tree is a valid checkpoint of size 0.
    const cmd = (await get(c, '/ledger/commands/checkpoint', auth(c))).body.toString('utf8');
    expect(openCheckpoint(cmd, [ed25519NoteVerifier(vkey.json.commands.vkey)], 'cc.example.com/vaultmesh/commands').checkpoint.treeSize).toBeGreaterThanOrEqual(0);
  });

  it('serves hash tiles and entry bundles that hash to them, with long cache headers for full tiles only', async () => {
    const c = await center();
    const node = await enrolledNode(c, 'web-01');
    await scans(c, node, 260);
    const lines = journalLines(c);
    expect(lines).toHaveLength(260);
    const leaves = lines.map((l) => leafHash(Buffer.from(l, 'utf8')));

    const full = await get(c, '/ledger/scans/tile/0/000', auth(c));
    expect(full.status).toBe(200);
    expect(full.headers['content-type']).toBe('application/octet-stream');
    expect(full.headers['cache-control']).toBe('private, max-age=31536000, immutable');
    expect(full.body.equals(Buffer.concat(leaves.slice(0, 256)))).toBe(true);
    const partial = await get(c, '/ledger/scans/tile/0/001.p/4', auth(c));
    expect(partial.body.equals(Buffer.concat(leaves.slice(256)))).toBe(true);
    expect(partial.headers['cache-control']).toBe('private, max-age=60');
    expect((await get(c, '/ledger/scans/tile/0/001.p/3', auth(c))).status).toBe(200); // an older checkpoint's width
    const beyond = await get(c, '/ledger/scans/tile/0/001.p/5', auth(c));
    expect(beyond.status).toBe(404);
    expect(JSON.parse(beyond.body.toString()).error.code).toBe('NOT_FOUND');
    const l1 = await get(c, '/ledger/scans/tile/1/000.p/1', auth(c));
    expect(l1.body).toHaveLength(32);

    const bundle = await get(c, '/ledger/scans/tile/entries/000', auth(c));
    expect(bundle.status).toBe(200);
    expect(bundle.headers['cache-control']).toBe('private, max-age=31536000, immutable');
    const entries = decodeEntryBundle(bundle.body)!;
    expect(entries.map((e) => e.toString('utf8'))).toEqual(lines.slice(0, 256));
    expect(Buffer.concat(entries.map((e) => leafHash(e))).equals(full.body)).toBe(true);
    const gz = await get(c, '/ledger/scans/tile/entries/001.p/4', { ...auth(c), 'accept-encoding': 'gzip' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(decodeEntryBundle(gunzipSync(gz.body))!.map((e) => e.toString('utf8'))).toEqual(lines.slice(256));

    // Consistency proof between two checkpoint sizes, checked with the RFC 9162 verifier.
    const proof = await c.api('GET', '/api/ledger/consistency?log=scans&old=3&new=260');
    expect(proof.status).toBe(200);
    const { hashRange } = c.services.ledgers.scans;
    expect(verifyConsistency(3, 260, hashRange(0, 3), hashRange(0, 260), proof.json.proof.map((h: string) => Buffer.from(h, 'hex')))).toBe(true);
    expect((await c.api('GET', '/api/ledger/consistency?log=scans&old=3&new=261')).status).toBe(400);
    expect((await c.api('GET', '/api/ledger/consistency?log=nope&old=3')).status).toBe(400);
  });

  it.each(['/ledger/scans/tile/0/1', '/ledger/scans/tile/0/x000/001', '/ledger/scans/tile/0/000.p/256', '/ledger/scans/tile/64/000', '/ledger/scans/tile/data/000'])(
    'answers a malformed tile path with a JSON 400: %s',
    async (path) => {
      const c = await center();
      const r = await get(c, path, auth(c));
      expect(r.status).toBe(400);
      expect(JSON.parse(r.body.toString()).error.code).toBe('VALIDATION_ERROR');
    },
  );

  it('needs ledger:read for everything, unless --ledger-public opens checkpoints and hash tiles (never entries)', async () => {
    const c = await center();
    const node = await enrolledNode(c, 'web-01');
    await scans(c, node, 2);
    const noLedger = (await c.api('POST', '/api/tokens', { name: 'no-ledger', scopes: ['nodes:read'] })).json.token;
    const reader = (await c.api('POST', '/api/tokens', { name: 'reader', scopes: ['ledger:read'] })).json.token;
    for (const path of ['/ledger/scans/checkpoint', '/ledger/scans/tile/0/000.p/2', '/ledger/scans/tile/entries/000.p/2']) {
      expect((await get(c, path)).status, path).toBe(401);
      expect((await get(c, path, { authorization: `Bearer ${noLedger}` })).status, path).toBe(403);
      expect((await get(c, path, { authorization: `Bearer ${reader}` })).status, path).toBe(200);
    }
    expect((await get(c, '/api/ledger/vkey', { authorization: `Bearer ${noLedger}` })).status).toBe(403);
    await c.close();

    const p = await startTestCenter(c.dir, { ledgerHeadSecs: 3600, orchestratorTickSecs: 0, ledgerOrigin: 'cc.example.com/vaultmesh', ledgerPublic: true });
    onCleanup(() => p.close());
    const cp = await get(p, '/ledger/scans/checkpoint');
    expect(cp.status).toBe(200);
    expect(cp.body.toString()).toMatch(/^cc\.example\.com\/vaultmesh\/scans\n2\n/);
    const tile = await get(p, '/ledger/scans/tile/0/000.p/2');
    expect(tile.status).toBe(200);
    expect(tile.headers['cache-control']).toBe('public, max-age=60');
    expect((await get(p, '/ledger/scans/tile/entries/000.p/2')).status).toBe(401);
    expect((await get(p, '/ledger/scans/tile/entries/000.p/2', { authorization: `Bearer ${noLedger}` })).status).toBe(403);
    expect((await get(p, '/ledger/scans/tile/entries/000.p/2', { authorization: `Bearer ${reader}` })).status).toBe(200);
  });

  it('refuses a bundle holding a line over 65,535 bytes with LEDGER_ENTRY_TOO_LARGE naming the leaf; its hash tile is served', async () => {
    const c = await center({ maxBodyBytes: 200_000 });
    const node = await enrolledNode(c, 'web-01');
    await scans(c, node, 1);
    const big: Finding[] = Array.from({ length: 40 }, (_, i) => ({ check: 'big', severity: 'info', title: `finding ${i}`, detail: 'x'.repeat(2000), evidence: {} }));
    expect((await node.send('POST', '/api/agent/scan', report('web-01', 'scan-big', big))).status).toBe(200);
    await scans(c, node, 1, 1);
    const lines = journalLines(c);
    expect(Buffer.byteLength(lines[1]!)).toBeGreaterThan(65_535);
    const r = await get(c, '/ledger/scans/tile/entries/000.p/3', auth(c));
    expect(r.status).toBe(422);
    expect(JSON.parse(r.body.toString()).error).toMatchObject({ code: 'LEDGER_ENTRY_TOO_LARGE', details: [{ path: 'leaf_index', message: expect.stringMatching(/^1 \(/) }] });
    expect((await get(c, '/ledger/scans/tile/entries/000.p/1', auth(c))).status).toBe(200); // the narrower bundle before it
    const tile = await get(c, '/ledger/scans/tile/0/000.p/3', auth(c));
    expect(tile.body.subarray(32, 64).equals(leafHash(Buffer.from(lines[1]!)))).toBe(true);
    const proof = await c.api('GET', '/api/ledger/proof/scan-big');
    expect(proof.json.leaf_line).toBe(lines[1]);
  });
});
