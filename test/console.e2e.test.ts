/**
 * The mission console in a real headless Chromium against a real center on port 0: sign in, watch a node enroll,
 * get approved from the console and change its pill on a heartbeat without a reload, survive a dropped stream
 * (banner, then recovery without duplicated rows), refuse a POST without the CSRF token, and send `ping` to a real
 * agent process (dist/node-agent/main.js; build first) with confirmation, its receipt arriving in the timeline live.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { startCenter, type RunningCenter } from '../command-center/center.js';
import { resolveCenterConfig } from '../command-center/config.js';
import { generateKeyPair, type KeyPair } from '../protocol/keys.js';
import { signRequest } from '../protocol/request-signing.js';
import { requirePart } from './required-part.js';
import { launchProfile, requireChromium } from './chromium.js';

const AGENT = resolve(import.meta.dirname, '../dist/node-agent/main.js');
const quiet = { info() {}, warn() {}, error() {} };

let dir: string;
let center: RunningCenter;
let adminToken: string;
let joinToken: string;
let browser: BrowserContext;
let page: Page;
let agent: { proc: ChildProcess; out: string[]; exited: Promise<unknown> } | undefined;

async function api(path: string, init: { method?: string; body?: unknown } = {}): Promise<Response> {
  return fetch(center.url + path, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
}

async function agentPost(key: KeyPair, nodeId: string, path: string, body: unknown): Promise<Response> {
  const raw = JSON.stringify(body);
  const headers = signRequest({ method: 'POST', path, nodeId, body: raw }, key);
  return fetch(center.url + path, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: raw });
}

async function enroll(key: KeyPair, nodeId: string, hostname: string): Promise<number> {
  const r = await agentPost(key, nodeId, '/api/agent/enroll', {
    token: joinToken,
    node_id: nodeId,
    hostname,
    os_profile: 'debian',
    public_key: key.publicKeyHex,
    agent_version: '0.1.0',
    facts: { kernel: '6.1.0', arch: 'x86_64' },
  });
  return r.status;
}

async function heartbeat(key: KeyPair, nodeId: string, hostname: string, opts: { servicesOk?: boolean; load?: number } = {}): Promise<number> {
  const r = await agentPost(key, nodeId, '/api/agent/heartbeat', {
    node_id: nodeId,
    hostname,
    os_profile: 'debian',
    cloudflare_ok: true,
    services_ok: opts.servicesOk ?? true,
    vaultmesh_root: '/opt/vaultmesh',
    timestamp: new Date().toISOString(),
    agent_version: '0.1.0',
    metrics: { load: [opts.load ?? 0.25, 0.2, 0.1], mem_used_bytes: 2e9, mem_total_bytes: 8e9, disk_used_bytes: 40e9, disk_total_bytes: 100e9, uptime_s: 3600 },
    services: { 'nginx.service': opts.servicesOk === false ? 'failed' : 'active', 'ssh.service': 'active' },
  });
  return r.status;
}

const rowIds = (p: Page) => p.$$eval('#node-list > li[id^="node-"]', (els) => els.map((e) => e.id));

const SUITE = 'console in headless Chromium';
const hasChromium = requireChromium(SUITE);
const hasAgent = requirePart({ name: `the built agent (${AGENT})`, present: existsSync(AGENT), install: 'run npm run build first (npm ci builds it)', suite: `${SUITE}: a real agent` });

describe.skipIf(!hasChromium)(SUITE, () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vm-console-e2e-'));
    center = await startCenter(resolveCenterConfig({ port: 0, logDir: join(dir, 'logs'), stateDir: join(dir, 'state'), fsync: 'off' }, {}), { log: quiet, keepaliveMs: 1000 });
    adminToken = readFileSync(center.adminTokenFile, 'utf8').trim();
    const t = await api('/api/join-tokens', { method: 'POST', body: { uses: 10 } });
    joinToken = ((await t.json()) as { token: string }).token;
    browser = await launchProfile();
    page = browser.pages()[0] ?? (await browser.newPage());
  });

  afterAll(async () => {
    if (agent && agent.proc.exitCode === null) {
      agent.proc.kill('SIGTERM');
      await agent.exited;
    }
    await browser?.close();
    await center?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('sign-in redirects, then the console loads with an empty fleet', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(center.url + '/console');
    expect(new URL(page.url()).pathname).toBe('/console/login');
    await page.fill('#token', 'not-the-token');
    await page.click('button[type=submit]');
    await expect.poll(() => page.textContent('.error')).toContain('not valid');
    errors.length = 0; // the refused sign-in logs its 401 in the browser console
    await page.fill('#token', adminToken);
    await page.click('button[type=submit]');
    await page.waitForURL(center.url + '/console');
    expect(await page.textContent('.who strong')).toBe('admin');
    expect(await page.isVisible('#node-list-empty')).toBe(true);
    await page.waitForFunction(() => document.documentElement.dataset.sse === 'live');
    expect(errors).toEqual([]);
  });

  test('a node appears, is approved from the console and turns OK on a heartbeat without a reload', async () => {
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
    const key = generateKeyPair();
    expect(await enroll(key, 'web-01', 'web-01.example')).toBe(202);

    // Pending enrollment shows up live, with a PENDING row in the list.
    await page.waitForSelector('#pending-web-01 button.ok');
    await page.waitForSelector('#node-web-01 .pill.s-pending');
    expect(await page.textContent('#node-web-01 .pill')).toContain('PENDING');

    await page.click('#pending-web-01 button.ok');
    await page.waitForSelector('#pending-web-01', { state: 'detached' });
    await page.waitForSelector('#node-web-01 .pill.s-offline'); // approved, not heard from yet
    expect((await page.textContent('#node-web-01 .pill'))?.trim()).toContain('WAITING');
    expect((await (await api('/api/nodes/web-01')).json()).enrollment).toBe('approved');

    expect(await heartbeat(key, 'web-01', 'web-01.example')).toBe(200);
    await page.waitForSelector('#node-web-01 .pill.s-ok');
    expect((await page.textContent('#node-web-01 .pill'))?.trim()).toContain('OK');
    // The KPIs are coalesced to the stream's status scan (1 s, from a snapshot shared by all clients).
    await expect.poll(() => page.textContent('#mission-bar .kpi.s-ok dd'), { timeout: 4000 }).toBe('1');

    expect(await heartbeat(key, 'web-01', 'web-01.example', { servicesOk: false })).toBe(200);
    await page.waitForSelector('#node-web-01 .pill.s-attn');
    await page.waitForSelector('#attention li >> text=services not OK: nginx.service failed');

    // Still the same document: no reload happened.
    expect(await page.evaluate(() => (window as unknown as { marker: number }).marker)).toBe(42);
    expect(await rowIds(page)).toEqual(['node-web-01']);
  });

  test('node selection is in the URL and the detail panel updates live', async () => {
    await page.click('#node-web-01 a');
    await page.waitForURL(/\/console\?node=web-01$/);
    await page.waitForSelector('#node-detail h2 >> text=web-01.example');
    await page.waitForFunction(() => document.documentElement.dataset.sse === 'live');
    const key = generateKeyPair();
    expect(await enroll(key, 'db-01', 'db-01.example')).toBe(202);
    await page.waitForSelector('#pending-db-01');
    expect(await page.textContent('#node-detail')).toContain('nginx.service');
    await page.waitForSelector('#feed li >> text=enrollment requested by db-01.example');

    // A note posted from the console (same validation as POST /api/events) shows in the feed and the timeline.
    await page.fill('#note-text', 'rolled kernel 6.1.0-28');
    await page.click('#note-form button[type=submit]');
    await page.waitForSelector('#feed li >> text=note: rolled kernel 6.1.0-28');
    await page.waitForSelector('#node-detail .timeline >> text=note: rolled kernel 6.1.0-28');
    await expect.poll(() => page.inputValue('#note-text')).toBe('');
  });

  test('a dropped stream shows the banner, then recovers with full state and no duplicated rows', async () => {
    const before = Number(await page.evaluate(() => document.documentElement.dataset.sseDisconnects ?? '0'));
    const feedBefore = await page.$$eval('#feed > li', (els) => els.map((e) => e.id));
    center.services.bus.close(); // ends every live stream server-side, as a restart or proxy timeout would
    await page.waitForSelector('#stream-banner', { state: 'visible', timeout: 5000 });
    // While down, something changes: the full-state fragment on reconnect must bring it in.
    const key = generateKeyPair();
    expect(await enroll(key, 'cache-01', 'cache-01.example')).toBe(202);
    await page.waitForSelector('#stream-banner', { state: 'hidden', timeout: 10_000 });
    await page.waitForSelector('#pending-cache-01');
    expect(Number(await page.evaluate(() => document.documentElement.dataset.sseDisconnects))).toBe(before + 1);
    const ids = await rowIds(page);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(['node-cache-01', 'node-db-01', 'node-web-01']);
    const feed = await page.$$eval('#feed > li', (els) => els.map((e) => e.id));
    expect(new Set(feed).size).toBe(feed.length);
    expect(feed.length).toBe(Math.min(feedBefore.length + 1, 50));
  });

  test('a cookie POST without the CSRF token, or from another origin, is refused', async () => {
    const noToken = await page.evaluate(async () => (await fetch('/console/nodes/db-01/approve', { method: 'POST', headers: { 'HX-Request': 'true' } })).status);
    expect(noToken).toBe(403);
    const wrongToken = await page.evaluate(async () => {
      const body = new URLSearchParams({ _csrf: 'forged' });
      return (await fetch('/console/nodes/db-01/approve', { method: 'POST', body, headers: { 'HX-Request': 'true' } })).status;
    });
    expect(wrongToken).toBe(403);
    const csrf = await page.getAttribute('input[name=_csrf]', 'value');
    const cross = await page.request.post(center.url + '/console/nodes/db-01/approve', {
      form: { _csrf: csrf! },
      headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
    });
    expect(cross.status()).toBe(403);
    expect((await (await api('/api/nodes/db-01')).json()).enrollment).toBe('pending');
    // And with the token, from this page, it works.
    const ok = await page.evaluate(async (t) => (await fetch('/console/nodes/db-01/reject', { method: 'POST', body: new URLSearchParams({ _csrf: t }), headers: { 'HX-Request': 'true' } })).status, csrf!);
    expect(ok).toBe(204);
  });

  test.skipIf(!hasAgent)('a real agent: ping sent from the console with confirmation, its receipt arrives in the timeline live', async () => {
    const proc = spawn(
      process.execPath,
      [AGENT, '--cc-url', center.url, '--join-token', joinToken, '--state-dir', join(dir, 'agent-state'), '--root', dir, '--node-id', 'agent-01',
        '--os-profile', 'debian', '--cloudflared-check', 'none', '--settings', '/nonexistent', '--heartbeat-secs', '2',
        // Pinned: an agent approved after a pending enrollment goes straight to heartbeats and never takes the
        // trust-on-first-use key from an `approved` enroll answer.
        '--cc-pubkey', center.services.centerKey.publicKeyHex],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } },
    );
    const out: string[] = [];
    proc.stdout!.on('data', (b) => out.push(String(b)));
    proc.stderr!.on('data', (b) => out.push(String(b)));
    agent = { proc, out, exited: new Promise((r) => proc.once('exit', r)) };
    await expect.poll(async () => (await api('/api/nodes/agent-01')).status, { timeout: 15_000 }).toBe(200);
    expect((await api('/api/nodes/agent-01/approve', { method: 'POST' })).status).toBe(200);
    await expect.poll(async () => (await (await api('/api/nodes/agent-01')).json()).last_seen ?? null, { timeout: 15_000 }).not.toBeNull();

    await page.goto(center.url + '/console?node=agent-01');
    await page.waitForFunction(() => document.documentElement.dataset.sse === 'live');
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 7));
    // Mission bar: the scan ledger's root (short hash and tree size), not a dash.
    expect(await page.textContent('#mission-bar code')).toMatch(/^[0-9a-f]{12}$/);
    // The node detail shows the orchestrator's next scheduled scan.
    expect(await page.textContent('#node-detail .schedule')).toContain('sovereign-scan');
    // Only what the shipped policy allows for debian, in catalogue order; only the chosen action's args show.
    expect(await page.$$eval('#cmd-action option', (os) => os.map((o) => (o as HTMLOptionElement).value))).toEqual(['ping', 'sovereign-scan', 'service-status', 'service-restart', 'collect-journal', 'rotate-key']);
    expect(await page.isVisible('#cmd-service-status-unit')).toBe(false);
    expect(await page.$$eval('#cmd-service-restart-unit option', (os) => os.map((o) => (o as HTMLOptionElement).value))).toEqual(['cloudflared.service', 'nginx.service', 'vaultmesh-agent.service']);

    // Without the confirmation the browser does not send it.
    await page.click('#cmd-form button[type=submit]');
    expect(await page.$eval('#cmd-confirm', (el) => (el as HTMLInputElement).validity.valueMissing)).toBe(true);
    expect((await page.textContent('#cmd-result'))?.trim()).toBe('');

    // The shipped policy names the readable units, so the form offers exactly those.
    expect(await page.$$eval('#cmd-service-status-unit option', (os) => os.map((o) => (o as HTMLOptionElement).value))).toEqual(['cloudflared.service', 'nginx.service', 'ssh.service', 'vaultmesh-agent.service']);
    // A validation error shows inline (4xx), readable: a value the form never offered (a stale or doctored page).
    await page.selectOption('#cmd-action', 'service-status');
    await page.$eval('#cmd-service-status-unit', (el) => {
      const select = el as HTMLSelectElement;
      select.add(new Option('-bad unit', '-bad unit'));
      select.value = '-bad unit';
    });
    await page.check('#cmd-confirm');
    await page.click('#cmd-form button[type=submit]');
    await page.waitForSelector('#cmd-result .error >> text=must be a systemd unit name');

    // ping with confirmation: sent, then delivered, and the agent's signed receipt arrives without a reload.
    await page.selectOption('#cmd-action', 'ping');
    await page.check('#cmd-confirm');
    await page.click('#cmd-form button[type=submit]');
    await page.waitForSelector('#cmd-result .ok >> text=ping');
    await expect.poll(() => page.isChecked('#cmd-confirm')).toBe(false);
    await page.waitForSelector('#node-detail .timeline li.k-command >> text=command ping issued by admin');
    await page.waitForSelector('#node-detail .timeline li.k-receipt.st-succeeded >> text=receipt: ping succeeded', { timeout: 15_000 }).catch((err) => {
      throw new Error(`no receipt in the timeline; agent output:\n${out.join('')}`, { cause: err });
    });
    expect(await page.evaluate(() => (window as unknown as { marker: number }).marker)).toBe(7);
    const [cmd] = (await (await api('/api/commands?node_id=agent-01')).json()) as Array<{ action: string; status: string; issued_by: string }>;
    expect(cmd).toMatchObject({ action: 'ping', status: 'succeeded', issued_by: 'admin' });

    // A policy denial and a missing confirmation are readable 4xx answers, never a 5xx.
    const csrf = await page.getAttribute('#cmd-form input[name=_csrf]', 'value');
    const post = (fields: Record<string, string>) =>
      page.evaluate(async (f) => {
        const r = await fetch('/console/commands', { method: 'POST', body: new URLSearchParams(f), headers: { 'HX-Request': 'true' } });
        return { status: r.status, text: await r.text() };
      }, { _csrf: csrf!, node_id: 'agent-01', ...fields });
    const denied = await post({ action: 'service-restart', 'service-restart.unit': 'ssh.service', confirm: 'yes' });
    expect(denied.status).toBe(403);
    expect(denied.text).toContain('unit ssh.service is not allowed for service-restart');
    const unconfirmed = await post({ action: 'ping' });
    expect(unconfirmed.status).toBe(400);
    expect(unconfirmed.text).toContain('I confirm');
  }, 45_000);

  test('sign-out ends the session', async () => {
    await page.click('.who button');
    await page.waitForURL(/\/console\/login$/);
    const r = await page.request.get(center.url + '/console', { maxRedirects: 0 });
    expect(r.status()).toBe(303);
  });
});
