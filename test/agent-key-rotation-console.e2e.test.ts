/**
 * Agent key rotation from the mission console, in a real headless Chromium against a real center and a real agent
 * process: the operator sends `rotate-key` from the node's command form with confirmation; the receipt (signed by
 * the new key) and the `node_key` event arrive in the timeline live, and the node page lists the rotation.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { startCenter, type RunningCenter } from '../command-center/center.js';
import { resolveCenterConfig } from '../command-center/config.js';
import { readKeyFile } from '../lib/key-file.js';
import { requirePart } from './required-part.js';
import { launchProfile, requireChromium } from './chromium.js';
import { AGENT_BIN } from './process-helpers.js';

const quiet = { info() {}, warn() {}, error() {} };
const SUITE = 'agent key rotation from the console (Chromium)';
const hasChromium = requireChromium(SUITE);
const hasAgent = requirePart({ name: `the built agent (${AGENT_BIN})`, present: existsSync(AGENT_BIN), install: 'run npm run build first (npm ci builds it)', suite: SUITE });

describe.skipIf(!hasChromium || !hasAgent)(SUITE, () => {
  let dir: string;
  let center: RunningCenter;
  let adminToken: string;
  let browser: BrowserContext;
  let page: Page;
  let agent: ChildProcess | undefined;
  const out: string[] = [];
  const api = async (path: string, init: { method?: string; body?: unknown } = {}) =>
    (await fetch(center.url + path, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    })).json() as Promise<any>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vm-keyrot-console-'));
    center = await startCenter(resolveCenterConfig({ port: 0, logDir: join(dir, 'logs'), stateDir: join(dir, 'state'), fsync: 'off' }, {}), { log: quiet, keepaliveMs: 1000 });
    adminToken = readFileSync(center.adminTokenFile, 'utf8').trim();
    browser = await launchProfile();
    page = browser.pages()[0] ?? (await browser.newPage());
    // The suite shares the machine with many others: waits are generous, each still bounded.
    page.setDefaultTimeout(60_000);
  });

  afterAll(async () => {
    if (agent && agent.exitCode === null) {
      agent.kill('SIGTERM');
      await new Promise((r) => agent!.once('exit', r));
    }
    await browser?.close();
    await center?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('rotate-key sent from the node page: receipt and rotation in the timeline, the key listed, heartbeats carry on', async () => {
    const { token } = await api('/api/join-tokens', { method: 'POST', body: { uses: 1 } });
    agent = spawn(
      process.execPath,
      [AGENT_BIN, '--cc-url', center.url, '--join-token', token, '--state-dir', join(dir, 'agent'), '--root', dir, '--node-id', 'rot-01', '--os-profile', 'debian',
        '--cloudflared-check', 'none', '--settings', '/nonexistent', '--heartbeat-secs', '1', '--command-poll-secs', '2', '--cc-pubkey', center.services.centerKey.publicKeyHex],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } },
    );
    agent.stdout!.on('data', (b) => out.push(String(b)));
    agent.stderr!.on('data', (b) => out.push(String(b)));
    await expect.poll(async () => (await api('/api/nodes/rot-01')).enrollment ?? null, { timeout: 60_000 }).toBe('pending');
    await api('/api/nodes/rot-01/approve', { method: 'POST' });
    await expect.poll(async () => (await api('/api/nodes/rot-01')).heartbeat_count, { timeout: 60_000 }).toBeGreaterThan(0);
    const before = readKeyFile(join(dir, 'agent', 'node-key.pem')).keyId;

    await page.goto(center.url + '/console');
    await page.fill('#token', adminToken);
    await page.click('button[type=submit]');
    await page.waitForURL(center.url + '/console');
    await page.goto(center.url + '/console?node=rot-01');
    await page.waitForFunction(() => document.documentElement.dataset.sse === 'live');
    expect(await page.textContent('#node-detail .sub')).toContain(before);

    await page.selectOption('#cmd-action', 'rotate-key');
    await page.check('#cmd-confirm');
    await page.click('#cmd-form button[type=submit]');
    await page.waitForSelector('#cmd-result .ok >> text=rotate-key');
    await page.waitForSelector('#node-detail .timeline li.k-receipt.st-succeeded >> text=receipt: rotate-key succeeded', { timeout: 60_000 }).catch((err) => {
      throw new Error(`no receipt in the timeline; agent output:\n${out.join('')}`, { cause: err });
    });
    const after = readKeyFile(join(dir, 'agent', 'node-key.pem')).keyId;
    expect(after).not.toBe(before);
    await page.waitForSelector(`#node-detail .timeline >> text=node key rotated: ${before} → ${after}`).catch((err) => {
      throw new Error(`no rotation ${before} → ${after} in the timeline; agent output:\n${out.join('')}`, { cause: err });
    });
    // One command, one rotation: nothing else (the heartbeat loop's pending or scheduled check) rotated it again.
    expect(out.join('').match(/starting node key rotation/g)).toHaveLength(1);
    // The detail panel is re-rendered from the state: the key and its rotation are listed.
    await page.reload();
    await page.waitForSelector('#node-detail .key-rotations');
    expect(await page.textContent('#node-detail .key-rotations')).toContain(`${before} → ${after}`);
    expect(await page.textContent('#node-detail .sub')).toContain(after);
    const [cmd] = await api('/api/commands?node_id=rot-01');
    expect(cmd).toMatchObject({ action: 'rotate-key', status: 'succeeded', issued_by: 'admin' });
    expect(JSON.parse(cmd.receipt.payload.output)).toMatchObject({ old_key_id: before, new_key_id: after, rotated: true });
    const count = (await api('/api/nodes/rot-01')).heartbeat_count as number;
    await expect.poll(async () => (await api('/api/nodes/rot-01')).heartbeat_count, { timeout: 60_000 }).toBeGreaterThan(count + 1);
  }, 240_000);
});
