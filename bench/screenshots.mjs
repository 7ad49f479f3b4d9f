#!/usr/bin/env node
/**
 * Writes the console screenshots in docs/ (run `npm run build` first): an empty fleet, a live demo fleet, and a
 * node's detail. Starts a real center (dist/) in a temp dir, drives signed agent requests (enrollments, heartbeats,
 * scan reports, command long-polls and signed receipts), sends a command through the console's own form, and
 * photographs the console in headless Chromium (/usr/bin/chromium) at 1280×800 (the node detail at 1280×1200, so
 * its scan and timeline fit).
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
const { signReceipt } = await dist('protocol/command.js');

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
const agentGet = (key, nodeId, path) => fetch(center.url + path, { headers: signRequest({ method: 'GET', path, nodeId, body: '' }, key) });
const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'];
const scanReport = (nodeId, findings, checksRun = 14) => {
  const at = new Date().toISOString();
  const summary = { ...Object.fromEntries(SEVERITIES.map((s) => [s, findings.filter((f) => f.severity === s).length])), checks_run: checksRun, checks_failed: 0 };
  return { node_id: nodeId, started_at: at, finished_at: at, agent_version: '0.1.0', trigger: 'schedule', summary, findings: findings.map((f) => ({ detail: '', evidence: {}, ...f })) };
};
/** The node side of a command: long-poll once, answer every command with a signed receipt. */
const answerCommands = async (n, output) => {
  const { commands } = await (await agentGet(n.key, n.id, '/api/agent/commands?wait=0')).json();
  for (const cmd of commands) {
    const at = new Date().toISOString();
    const receipt = signReceipt(
      { v: 1, command_id: cmd.payload.id, node_id: n.id, status: 'succeeded', exit_code: 0, started_at: at, finished_at: at, output: output(cmd.payload), truncated: false },
      n.key,
    );
    const r = await agent(n.key, n.id, '/api/agent/receipts', receipt);
    if (!r.ok) throw new Error(`receipt refused: ${r.status} ${await r.text()}`);
  }
  return commands.length;
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
  const hb = (n, i, o = {}) => agent(n.key, n.id, '/api/agent/heartbeat', heartbeatOf(n, i, o));
  const heartbeatOf = (n, i, o = {}) => ({
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
  // Three VMs from one image, all calling themselves "vm" (as the demo's do): the list tells them apart by id.
  const twins = ['3f9c1e7a-52b4-4d0e-9a61-0c2d8e4b71f3', 'b81d6a0c-7e23-4f95-8c4a-5e9f1d3a2b60', 'e4a27f5d-1c98-43b6-b0d2-9f6e8a7c5d14'].map((id) => ({ id, key: generateKeyPair(), profile: 'debian' }));
  for (const n of twins) {
    await agent(n.key, n.id, '/api/agent/enroll', { token, node_id: n.id, hostname: 'vm', os_profile: n.profile, public_key: n.key.publicKeyHex, agent_version: '0.1.0', facts: { arch: 'x86_64', region: 'fra1' } });
    await api(`/api/nodes/${n.id}/approve`);
    for (let i = 0; i < 3; i++) {
      const r = await agent(n.key, n.id, '/api/agent/heartbeat', { ...heartbeatOf(n, i), hostname: 'vm' });
      if (!r.ok) throw new Error(`heartbeat refused: ${r.status}`);
    }
  }
  await api('/api/events', { kind: 'note', node_id: nodes[0].id, body: { text: 'kernel 6.1.0-28 rolled out to web tier' } });
  await api('/api/events', { kind: 'incident', node_id: nodes[4].id, body: { title: 'nginx failing health checks', severity: 'high' } });
  // Latest scans (kept per node by the center, counted fleet-wide in the right panel; the ledger root moves).
  const scans = {
    0: [
      { check: 'ssh-password-auth', severity: 'high', title: 'SSH allows password authentication' },
      { check: 'unattended-upgrades', severity: 'medium', title: 'Unattended upgrades are disabled' },
      { check: 'ntp-sync', severity: 'low', title: 'Clock not synchronised by NTP' },
      { check: 'kernel-version', severity: 'info', title: 'Kernel 6.1.0-28-amd64' },
    ],
    1: [{ check: 'listen-any', severity: 'critical', title: 'PostgreSQL listens on 0.0.0.0 without TLS' }],
    2: [{ check: 'disk-usage', severity: 'high', title: 'Disk 95% used on /' }],
    3: [],
    5: [{ check: 'world-writable', severity: 'medium', title: '3 world-writable files under /etc' }],
    6: [{ check: 'ntp-sync', severity: 'low', title: 'Clock not synchronised by NTP' }],
  };
  for (const [i, findings] of Object.entries(scans)) {
    const n = nodes[Number(i)];
    const r = await agent(n.key, n.id, '/api/agent/scan', scanReport(n.id, findings));
    if (!r.ok) throw new Error(`scan refused: ${r.status} ${await r.text()}`);
  }
  await page.waitForTimeout(1500);
  await page.reload();
  await page.waitForFunction(() => document.documentElement.dataset.sse === 'live');
  await page.screenshot({ path: join(OUT, 'console-fleet.png') });

  // The node detail, with a command sent through the console's own form and answered by the node.
  const web = nodes[0];
  await page.setViewportSize({ width: 1280, height: 1200 });
  await page.click(`#node-${web.id} a`);
  await page.waitForSelector('#node-detail svg');
  await page.waitForFunction(() => document.documentElement.dataset.sse === 'live');
  const send = async (action, fill) => {
    await page.selectOption('#cmd-action', action);
    // A unit is a <select> when the policy lists exact units, a text input for patterns.
    if (fill) {
      if ((await page.$eval(fill[0], (el) => el.tagName)) === 'SELECT') await page.selectOption(fill[0], fill[1]);
      else await page.fill(fill[0], fill[1]);
    }
    await page.check('#cmd-confirm');
    await page.click('#cmd-form button[type=submit]');
    await page.waitForSelector('#cmd-result .ok');
  };
  await send('ping');
  await answerCommands(web, (p) => JSON.stringify({ pong: true, node_id: p.node_id }));
  await send('service-status', ['#cmd-service-status-unit', 'nginx.service']);
  await answerCommands(web, () => '● nginx.service - A high performance web server\n   Active: active (running) since Mon 2026-11-23');
  await page.waitForSelector('#node-detail .timeline li.k-receipt >> text=service-status succeeded');
  await page.selectOption('#cmd-action', 'service-status');
  await page.waitForTimeout(500);
  await page.screenshot({ path: join(OUT, 'console-node.png') });
  // Phone width: the same node view must fit without sideways scrolling.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await page.screenshot({ path: join(OUT, 'console-phone.png') });
  if (overflow > 0) console.warn(`WARNING: at 390 px the page scrolls sideways by ${overflow} px`);
  console.log(`wrote console-empty.png, console-fleet.png, console-node.png, console-phone.png to ${OUT}`);
} finally {
  await browser.close();
  await center.close();
  rmSync(dir, { recursive: true, force: true });
}
