/**
 * Maintenance windows in the mission console, in a real headless Chromium against a real center: start a window for
 * the selected node from the form, see its MAINT badge and the window appear live (SSE, no reload), end it with the
 * button, and see both go; the journal holds the operator as the author of both steps.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { startCenter, type RunningCenter } from '../command-center/center.js';
import { resolveCenterConfig } from '../command-center/config.js';
import { generateKeyPair } from '../protocol/keys.js';
import { signRequest } from '../protocol/request-signing.js';
import { heartbeatBody } from './helpers.js';
import { launchProfile, requireChromium } from './chromium.js';

const quiet = { info() {}, warn() {}, error() {} };
const SUITE = 'maintenance windows in the console (headless Chromium)';
const hasChromium = requireChromium(SUITE);

let dir: string;
let center: RunningCenter;
let adminToken: string;
let browser: BrowserContext;
let page: Page;

async function api(path: string, init: { method?: string; body?: unknown } = {}): Promise<any> {
  const r = await fetch(center.url + path, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  return r.json();
}

async function agentPost(key: ReturnType<typeof generateKeyPair>, nodeId: string, path: string, body: unknown): Promise<number> {
  const raw = JSON.stringify(body);
  const r = await fetch(center.url + path, { method: 'POST', headers: { ...signRequest({ method: 'POST', path, nodeId, body: raw }, key), 'content-type': 'application/json' }, body: raw });
  return r.status;
}

describe.skipIf(!hasChromium)(SUITE, () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vm-console-mw-'));
    center = await startCenter(resolveCenterConfig({ port: 0, logDir: join(dir, 'logs'), stateDir: join(dir, 'state'), fsync: 'off' }, {}), { log: quiet, keepaliveMs: 1000 });
    adminToken = readFileSync(center.adminTokenFile, 'utf8').trim();
    const { token } = await api('/api/join-tokens', { method: 'POST', body: { uses: 1 } });
    const key = generateKeyPair();
    expect(await agentPost(key, 'web-01', '/api/agent/enroll', { token, node_id: 'web-01', hostname: 'web-01.example', os_profile: 'debian', public_key: key.publicKeyHex, agent_version: '0.1.0', facts: {} })).toBe(202);
    await api('/api/nodes/web-01/approve', { method: 'POST' });
    expect(await agentPost(key, 'web-01', '/api/agent/heartbeat', heartbeatBody('web-01'))).toBe(200);
    browser = await launchProfile();
    page = browser.pages()[0] ?? (await browser.newPage());
  });

  afterAll(async () => {
    await browser?.close();
    await center?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('starts a window for the selected node and ends it, live', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(center.url + '/console/login');
    await page.fill('#token', adminToken);
    await page.click('button[type=submit]');
    await page.waitForURL(center.url + '/console');
    await page.goto(center.url + '/console?node=web-01');
    await page.waitForFunction(() => document.documentElement.dataset.sse === 'live');
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 7));
    expect(await page.$('#node-web-01 .maint')).toBeNull();

    await page.fill('#mw-reason', 'kernel upgrade');
    await page.selectOption('#mw-for', '7200');
    await page.selectOption('#mw-scans', 'skip');
    await page.click('#maintenance-form button[type=submit]');

    // The row badge and the node's window arrive over the stream; the page was not reloaded.
    await page.waitForSelector('#node-web-01 .maint');
    await page.waitForSelector('#node-detail .maintenance .windows li');
    expect(await page.textContent('#node-detail .maintenance')).toContain('kernel upgrade');
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(7);
    expect(await page.inputValue('#mw-reason')).toBe(''); // the form was reset after it succeeded
    const [w] = (await api('/api/maintenance')).items;
    expect(w).toMatchObject({ target: { node_id: 'web-01' }, reason: 'kernel upgrade', scans: 'skip', created_by: 'admin', state: 'active' });
    expect(Date.parse(w.ends_at) - Date.parse(w.starts_at)).toBe(7200_000);

    await page.click(`#mw-${w.id} button`);
    await page.waitForSelector('#node-web-01 .maint', { state: 'detached' });
    await page.waitForSelector('#node-detail .maintenance', { state: 'detached' });
    expect(await api(`/api/maintenance/${w.id}`)).toMatchObject({ state: 'ended', ended_early: true, ended_by: 'admin' });

    // The same form covers the node's whole profile.
    await page.selectOption('#mw-cover', 'os_profile');
    await page.fill('#mw-reason', 'debian point release');
    await page.click('#maintenance-form button[type=submit]');
    await page.waitForSelector('#node-web-01 .maint');
    const profileWindow = (await api('/api/maintenance')).items.find((x: { reason: string }) => x.reason === 'debian point release');
    expect(profileWindow).toMatchObject({ target: { os_profile: 'debian' }, nodes: ['web-01'], state: 'active' });

    // A refused request says why in the form (here: no reason, which the browser lets through with a space).
    await page.fill('#mw-reason', ' ');
    await page.click('#maintenance-form button[type=submit]');
    await page.waitForSelector('#mw-error:not([hidden])');
    expect(await page.textContent('#mw-error')).toMatch(/HTTP 400/);
    expect(errors).toEqual([]);
  });
});
