import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { enrollViaApi, makeNodes, protocol, signedHeartbeat } from './lib/agents.mjs';
import { startCenterProcess, spawnServer, BENCH_ENV } from './lib/center-process.mjs';
import { readFileSync } from 'node:fs';
import { openSseClients, wallNow } from './lib/sse-clients.mjs';
const dir = mkdtempSync(join(tmpdir(), 'vm-h17f-'));
const distDir = process.env.DIST;
let center;
if (distDir) {
  const server = await spawnServer(join(distDir, 'command-center', 'main.js'), ['--port', '0', '--log-dir', join(dir, 'logs'), '--state-dir', join(dir, 'state'), '--auto-approve'], { env: BENCH_ENV });
  center = Object.assign(server, { token: readFileSync(join(dir, 'state', 'admin.token'), 'utf8').trim() });
} else center = await startCenterProcess(dir, ['--auto-approve']);
const [node] = await makeNodes(1, 'x');
await enrollViaApi(center.url, center.token, [node]);
const clients = await openSseClients(center.url, center.token, Number(process.env.N ?? 1000));
const p = await protocol();
const sent = [];
for (let i = 0; i < 30; i++) {
  const req = signedHeartbeat(p, node, 100_000 + i + Math.floor(Math.random() * 1e6) * 1000);
  const t0 = wallNow();
  const res = await request(center.url + req.path, { method: 'POST', headers: req.headers, body: req.body });
  const json = await res.body.json();
  sent.push({ seq: json.seq, t0, ack: wallNow() });
  await new Promise((r) => setTimeout(r, 150));
}
await new Promise((r) => setTimeout(r, 1000));
const events = await (await request(`${center.url}/api/events?since=${sent[0].seq - 1}&kind=heartbeat&limit=100`, { headers: { authorization: `Bearer ${center.token}` } })).body.json();
const ts = new Map(events.items.map((e) => [e.seq, Date.parse(e.ts)]));
const all = [];
for (const s of sent) {
  const xs = clients.map((c) => c.seqs.get(s.seq) - ts.get(s.seq)).filter(Number.isFinite).sort((a, b) => a - b);
  all.push(...xs);
  console.log(`seq ${s.seq} post→ts ${(ts.get(s.seq) - s.t0).toFixed(0)} ack-ts ${(s.ack - ts.get(s.seq)).toFixed(0)} recv: min ${xs[0].toFixed(0)} p50 ${xs[xs.length >> 1].toFixed(0)} p99 ${xs[Math.floor(xs.length * 0.99)].toFixed(0)} max ${xs.at(-1).toFixed(0)}`);
}
all.sort((a, b) => a - b);
console.log('overall p50', all[all.length >> 1].toFixed(1), 'p99', all[Math.floor(all.length * 0.99)].toFixed(1));
for (const c of clients) c.close();
await center.stop();
rmSync(dir, { recursive: true, force: true });
