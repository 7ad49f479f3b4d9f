#!/usr/bin/env node
/**
 * Writes the console screenshots in docs/ (run `npm run build` first): an empty fleet, a live demo fleet, and a
 * node's detail. Starts a real center (dist/) in a temp dir, drives signed agent requests, and photographs the
 * console in headless Chromium (/usr/bin/chromium) at 1280×800.
 *
 *   node bench/screenshots.mjs [outDir=docs]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(pathToFileURL(join(ROOT, 'dist', p)).href);
const OUT = resolve(process.argv[2] ?? join(ROOT, 'docs'));

const { startCenter } = await dist('command-center/center.js');
const { resolveCenterConfig } = await dist('command-center/config.js');
const { generateKeyPair } = await dist('protocol/keys.js');
const { signRequest } = await dist('protocol/request-signing.js');

const dir = mkdtempSync(join(tmpdir(), 'vm-shots-'));
const center = await startCenter(resolveCenterConfig({ port: 0, logDir: join(dir, 'logs'), stateDir: join(dir, 'state'), fsync: 'off' }, {}), {
  log: { info() {}, warn() {}, error() {} },
});
const admin = readFileSync(center.adminTokenFile, 'utf8').trim();
const api = (path, body, method = 'POST') =>
  fetch(center.url + path, { method, headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
const agent = (key, nodeId, path, body) => {
  const raw = JSON.stringify(body);
  return fetch(center.url + path, { method: 'POST', headers: { ...signRequest({ method: 'POST', path, nodeId, body: raw }, key), 'content-type': 'application/json' }, body: raw });
};

const browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'vm-chromium-')), {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  viewport: { width: 1280, height: 800 },
});
try {
  const page = browser.pages()[0] ?? (await browser.newPage());
  await page.goto(center.url + '/console/login');
  await page.fill('#token', admin);
  await page.click('button[type=submit]');
  await page.waitForURL(center.url + '/console');
  await page.waitForFunction(() => document.documentElement.dataset.sse === 'live');
  await page.screenshot({ path: join(OUT, 'console-empty.png') });

  const { token } = await (await api('/api/join-tokens', { uses: 100 })).json();
  const roles = ['web', 'db', 'cache', 'edge', 'build', 'vault'];
  const nodes = Array.from({ length: 18 }, (_, i) => ({ id: `${roles[i % roles.length]}-${String(Math.floor(i / roles.length) + 1).padStart(2, '0')}`, key: generateKeyPair(), profile: i % 4 === 3 ? 'ubuntu' : 'debian' }));
  for (const n of nodes) {
    await agent(n.key, n.id, '/api/agent/enroll', { token, node_id: n.id, hostname: `${n.id}.fra1.example.net`, os_profile: n.profile, public_key: n.key.publicKeyHex, agent_version: '0.1.0', facts: { arch: 'x86_64', kernel: '6.1.0-28-amd64', cpus: 4 + (n.id.length % 4) * 4, region: 'fra1' } });
  }
  // Two stay pending; one is approved but never reports (offline).
  for (const n of nodes.slice(0, 16)) await api(`/api/nodes/${n.id}/approve`);
  const hb = (n, i, o = {}) =>
    agent(n.key, n.id, '/api/agent/heartbeat', {
      node_id: n.id,
      hostname: `${n.id}.fra1.example.net`,
      os_profile: n.profile,
      cloudflare_ok: o.cf ?? true,
      services_ok: o.svc ?? true,
      vaultmesh_root: '/var/lib/vaultmesh',
      timestamp: new Date().toISOString(),
      agent_version: '0.1.0',
      metrics: {
        load: [Math.abs(0.4 + Math.sin(i / 2 + n.id.length) * 0.35 + (o.busy ? 1.8 : 0)), 0.5, 0.4],
        mem_used_bytes: (3 + Math.sin(i / 3) * 0.6 + (o.busy ? 2.5 : 0)) * 2 ** 30,
        mem_total_bytes: 8 * 2 ** 30,
        disk_used_bytes: (41 + i * 0.4 + (o.disk ?? 0)) * 2 ** 30,
        disk_total_bytes: 100 * 2 ** 30,
        uptime_s: 86_400 * 3 + i * 30,
      },
      services: { 'nginx.service': o.svc === false ? 'failed' : 'active', 'ssh.service': 'active', 'cloudflared.service': o.cf === false ? 'activating' : 'active', 'vaultmesh-agent.service': 'active' },
    });
  for (let i = 0; i < 16; i++) {
    for (const [k, n] of nodes.slice(0, 15).entries()) {
      await hb(n, i, { busy: k === 0 && i > 9, svc: k === 4 && i > 13 ? false : true, cf: k === 7 && i > 14 ? false : true, disk: k === 2 ? 48 : 0 });
    }
  }
  await api('/api/events', { kind: 'note', node_id: nodes[0].id, body: { text: 'kernel 6.1.0-28 rolled out to web tier' } });
  await api('/api/events', { kind: 'incident', node_id: nodes[4].id, body: { title: 'nginx failing health checks', severity: 'high' } });
  await page.waitForTimeout(1500);
  await page.reload();
  await page.waitForFunction(() => document.documentElement.dataset.sse === 'live');
  await page.screenshot({ path: join(OUT, 'console-fleet.png') });

  await page.click(`#node-${nodes[0].id} a`);
  await page.waitForSelector('#node-detail svg');
  await page.waitForTimeout(500);
  await page.screenshot({ path: join(OUT, 'console-node.png') });
  console.log(`wrote console-empty.png, console-fleet.png, console-node.png to ${OUT}`);
} finally {
  await browser.close();
  await center.close();
  rmSync(dir, { recursive: true, force: true });
}
