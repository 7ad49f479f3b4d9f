// Interop with code nobody here wrote: a Go program on golang.org/x/mod/sumdb/note and sumdb/tlog (Debian's
// golang-go and golang-golang-x-mod-dev, built here with GO111MODULE=off) verifies our checkpoint, tiles, entry
// bundles, an inclusion proof and a consistency proof, from the center and from a static mirror of `ledger tiles`.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { summarize } from '../protocol/scan.js';
import { cleanupAfterEach, enrolledNode, startTestCenter, tempDir, type TestCenter } from './helpers.js';
import { ROOT } from './process-helpers.js';
import { runLedger } from '../cli/commands/ledger.js';
import { Writable } from 'node:stream';

const onCleanup = cleanupAfterEach();
const GOPATH = '/usr/share/gocode';
const build = tempDir('vm-go-');
const bin = join(build.dir, 'tlog-verify');

beforeAll(() => {
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.error || !existsSync(join(GOPATH, 'src/golang.org/x/mod/sumdb/tlog'))) {
    throw new Error('this test needs Debian\'s golang-go and golang-golang-x-mod-dev (apt-get install golang-go golang-golang-x-mod-dev; .ci/run installs them)');
  }
  const r = spawnSync('go', ['build', '-o', bin, '.'], {
    cwd: join(ROOT, 'test/interop/tlog-verify'),
    env: { ...process.env, GO111MODULE: 'off', GOPATH, GOFLAGS: '', ...(process.env.GOCACHE || process.env.HOME ? {} : { GOCACHE: join(build.dir, 'cache') }) },
    encoding: 'utf8',
    timeout: 240_000,
  });
  if (r.status !== 0) throw new Error(`go build failed: ${r.stderr || r.error}`);
}, 250_000);
afterAll(() => build.cleanup());

function goVerify(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

function report(nodeId: string, id: string) {
  const now = new Date().toISOString();
  return { id, node_id: nodeId, started_at: now, finished_at: now, agent_version: '0.1.0', trigger: 'manual', findings: [], summary: summarize([], { checks_run: 1, checks_failed: 0 }) };
}

async function scans(c: TestCenter, node: Awaited<ReturnType<typeof enrolledNode>>, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) expect((await node.send('POST', '/api/agent/scan', report(node.id, `scan-${i}`))).status).toBe(200);
  expect((await c.api('GET', `/api/ledger/proof/scan-${to - 1}`)).status).toBe(200); // signs a head over them
}

/** A plain static file server: what publishing `vaultmesh ledger tiles` output anywhere amounts to. */
async function serveStatic(dir: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const path = join(dir, decodeURIComponent(new URL(req.url!, 'http://x').pathname));
    if (!path.startsWith(dir) || !existsSync(path)) return void res.writeHead(404).end();
    res.writeHead(200).end(readFileSync(path));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('Go sumdb/note + sumdb/tlog verify our ledger', () => {
  it('is the program shown in docs/LEDGER.md', () => {
    const program = readFileSync(join(ROOT, 'test/interop/tlog-verify/main.go'), 'utf8');
    expect(readFileSync(join(ROOT, 'docs/LEDGER.md'), 'utf8')).toContain(`\`\`\`go\n${program}\`\`\``);
  });

  it('checks checkpoint, tiles, entries, inclusion and consistency from the center and from a static mirror', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir, { ledgerHeadSecs: 3600, orchestratorTickSecs: 0, ledgerOrigin: 'cc.example.com/vaultmesh' });
    onCleanup(() => c.close());
    const node = await enrolledNode(c, 'web-01');
    const token = (await c.api('POST', '/api/tokens', { name: 'auditor', scopes: ['ledger:read', 'nodes:read'] })).json.token as string;
    await scans(c, node, 0, 5);
    const oldFile = join(t.dir, 'old-checkpoint');
    const old = await request(`${c.url}/ledger/scans/checkpoint`, { headers: { authorization: `Bearer ${token}` } });
    writeFileSync(oldFile, Buffer.from(await old.body.arrayBuffer()));
    // 300 leaves: a full level-0 tile, a partial one, and a level-1 tile.
    await scans(c, node, 5, 300);
    const vkey = (await c.api('GET', '/api/ledger/vkey')).json.scans.vkey as string;

    const live = await goVerify(['-log', `${c.url}/ledger/scans`, '-vkey', vkey, '-token', token, '-api', c.url, '-name', 'scans', '-id', 'scan-7', '-old', oldFile]);
    expect(live.stderr).toBe('');
    expect(live.code).toBe(0);
    expect(live.stdout).toBe(
      `checkpoint: cc.example.com/vaultmesh/scans size 300 root ${c.services.ledgers.scans.root().root_hash}\n` +
        'tiles: root reproduced\nentries: 300 hash to the tiles\ninclusion: scan-7 is record 7 of 300\nconsistency: size 300 extends size 5\nok\n',
    );

    // Another key under the same name: note.Open must refuse the checkpoint.
    const forged = vkey.replace(/\+[0-9a-f]{8}\+.*$/, '+00000000+AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB');
    const wrong = await goVerify(['-log', `${c.url}/ledger/scans`, '-vkey', forged, '-token', token]);
    expect(wrong.code).not.toBe(0);

    // The static mirror, written offline from the log dir after the center stopped, served by a plain file server.
    await c.close();
    const out = join(t.dir, 'mirror');
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    expect(await runLedger('tiles', undefined, { dir: join(t.dir, 'logs'), out, log: 'scans' }, { stdout: sink, stderr: sink, env: {}, setExitCode: () => undefined })).toBe(0);
    const mirror = await serveStatic(out);
    onCleanup(() => new Promise<void>((r) => mirror.server.close(() => r())));
    const offline = await goVerify(['-log', `${mirror.url}/scans`, '-vkey', vkey]);
    expect(offline.stderr).toBe('');
    expect(offline.stdout).toMatch(/tiles: root reproduced\nentries: 300 hash to the tiles\nok\n$/);
  });
});
