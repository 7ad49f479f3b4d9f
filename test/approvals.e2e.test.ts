/**
 * m-of-n approval in real headless Chromium with a real agent process: operator alice proposes `ping` (2 approvals
 * needed on profile prod) from the console; bob and carol, each signed in with their own token in their own browser
 * context, see the proposal arrive live and approve it; alice cannot approve her own. The second approval signs the
 * command, the agent (dist/node-agent/main.js; build first) runs it, and its receipt arrives in the consoles' timeline.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { startCenter, type RunningCenter } from '../command-center/center.js';
import { resolveCenterConfig } from '../command-center/config.js';
import { requirePart } from './required-part.js';
import { launchBrowser, requireChromium } from './chromium.js';

const AGENT = resolve(import.meta.dirname, '../dist/node-agent/main.js');
const quiet = { info() {}, warn() {}, error() {} };

const SUITE = 'm-of-n approval in headless Chromium with a real agent';
const hasChromium = requireChromium(SUITE);
const hasAgent = requirePart({ name: `the built agent (${AGENT})`, present: existsSync(AGENT), install: 'run npm run build first (npm ci builds it)', suite: SUITE });

let dir: string;
let center: RunningCenter;
let adminToken: string;
let browser: Browser;
let agent: { proc: ChildProcess; out: string[]; exited: Promise<unknown> } | undefined;

async function api(path: string, init: { method?: string; body?: unknown; token?: string } = {}): Promise<Response> {
  return fetch(center.url + path, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${init.token ?? adminToken}`, 'content-type': 'application/json' },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
}

/** A signed-in console page in its own browser context (its own session cookie) for an operator's token. */
async function signedIn(token: string, path: string): Promise<Page> {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  await page.goto(center.url + '/console/login');
  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await page.waitForURL(center.url + '/console');
  await page.goto(center.url + path);
  await page.waitForFunction(() => document.documentElement.dataset.sse === 'live');
  return page;
}

describe.skipIf(!hasChromium || !hasAgent)(SUITE, () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vm-approvals-e2e-'));
    const policy = join(dir, 'policy.json');
    writeFileSync(policy, JSON.stringify({ v: 1, profiles: { prod: { actions: ['ping'], approvals: { ping: 2 } } } }));
    center = await startCenter(resolveCenterConfig({ port: 0, logDir: join(dir, 'logs'), stateDir: join(dir, 'state'), fsync: 'off', policy, orchestratorTickSecs: 0 }, {}), { log: quiet, keepaliveMs: 1000 });
    adminToken = readFileSync(center.adminTokenFile, 'utf8').trim();
    browser = await launchBrowser();
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

  test('alice proposes, bob and carol approve in their consoles, the agent runs it, the receipt shows live', async () => {
    const joinToken = ((await (await api('/api/join-tokens', { method: 'POST', body: { uses: 1 } })).json()) as { token: string }).token;
    const proc = spawn(
      process.execPath,
      [AGENT, '--cc-url', center.url, '--join-token', joinToken, '--state-dir', join(dir, 'agent-state'), '--root', dir, '--node-id', 'prod-01',
        '--os-profile', 'prod', '--cloudflared-check', 'none', '--settings', '/nonexistent', '--heartbeat-secs', '2', '--cc-pubkey', center.services.centerKey.publicKeyHex],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } },
    );
    const out: string[] = [];
    proc.stdout!.on('data', (b) => out.push(String(b)));
    proc.stderr!.on('data', (b) => out.push(String(b)));
    agent = { proc, out, exited: new Promise((r) => proc.once('exit', r)) };
    await expect.poll(async () => (await api('/api/nodes/prod-01')).status, { timeout: 15_000 }).toBe(200);
    expect((await api('/api/nodes/prod-01/approve', { method: 'POST' })).status).toBe(200);
    await expect.poll(async () => (await (await api('/api/nodes/prod-01')).json()).last_seen ?? null, { timeout: 15_000 }).not.toBeNull();

    const tokens: Record<string, string> = {};
    for (const name of ['alice', 'bob', 'carol']) {
      const r = await api('/api/tokens', { method: 'POST', body: { name, scopes: ['nodes:read', 'commands:write'] } });
      tokens[name] = ((await r.json()) as { token: string }).token;
    }
    const alice = await signedIn(tokens.alice!, '/console?node=prod-01');
    const bob = await signedIn(tokens.bob!, '/console');
    const carol = await signedIn(tokens.carol!, '/console?node=prod-01');
    expect(await bob.$$('#proposals li')).toHaveLength(0);

    // alice proposes from the command form (the option says it needs approvals): nothing is signed, the answer says so.
    expect(await alice.textContent('#cmd-action option[value=ping]')).toBe('ping (needs 2 approvals)');
    await alice.selectOption('#cmd-action', 'ping');
    await alice.check('#cmd-confirm');
    await alice.click('#cmd-form button[type=submit]');
    await alice.waitForSelector('#cmd-result .ok >> text=needs 2 approvals by other operators');
    const list = (await (await api('/api/commands?status=proposed')).json()) as Array<{ id: string; signed: unknown }>;
    expect(list).toHaveLength(1);
    const id = list[0]!.id;
    expect(list[0]!.signed).toBeNull();

    // The proposal arrives in every console over the stream, without a reload; alice's own Approve is disabled.
    for (const p of [alice, bob, carol]) await p.waitForSelector(`#proposal-${id} >> text=0 of 2 approvals`);
    expect(await alice.isDisabled(`#proposal-${id} button.ok`)).toBe(true);
    await alice.waitForSelector(`#node-detail .timeline li.k-command >> text=command ping proposed by token:alice`);
    // Forced past the disabled button, the center still refuses (SELF_APPROVAL), readable in the panel.
    const csrf = await alice.getAttribute('#cmd-form input[name=_csrf]', 'value');
    const forced = await alice.evaluate(async ([cid, token]) => {
      const r = await fetch(`/console/commands/${cid}/approve`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'hx-request': 'true' }, body: `_csrf=${encodeURIComponent(token!)}` });
      return { status: r.status, text: await r.text() };
    }, [id, csrf] as const);
    expect(forced.status).toBe(403);
    expect(forced.text).toContain('SELF_APPROVAL');

    await bob.click(`#proposal-${id} button.ok`);
    await bob.waitForSelector('#proposal-result .ok >> text=1 of 2 approvals');
    for (const p of [alice, carol]) await p.waitForSelector(`#proposal-${id} >> text=1 of 2 approvals`);
    // bob approved already: his own list re-renders over its live stream, a moment after his answer arrived.
    await expect.poll(() => bob.isDisabled(`#proposal-${id} button.ok`), { timeout: 10_000 }).toBe(true);
    expect((await (await api(`/api/commands/${id}`)).json()).status).toBe('proposed');

    await carol.click(`#proposal-${id} button.ok`);
    await carol.waitForSelector('#proposal-result .ok >> text=signed and queued');
    // The proposal leaves every list; the agent runs the command and its receipt arrives in the timeline live.
    for (const p of [alice, bob, carol]) await p.waitForSelector(`#proposal-${id}`, { state: 'detached' });
    await carol.waitForSelector('#node-detail .timeline li.k-command >> text=approved by token:bob, token:carol and signed');
    await carol.waitForSelector('#node-detail .timeline li.k-receipt.st-succeeded >> text=receipt: ping succeeded', { timeout: 20_000 }).catch((err) => {
      throw new Error(`no receipt in the timeline; agent output:\n${out.join('')}`, { cause: err });
    });
    await alice.waitForSelector('#node-detail .timeline li.k-receipt.st-succeeded >> text=receipt: ping succeeded');
    const done = (await (await api(`/api/commands/${id}`)).json()) as { status: string; proposal: { approvals: Array<{ by: string }> } };
    expect(done.status).toBe('succeeded');
    expect(done.proposal.approvals.map((a) => a.by)).toEqual(['token:bob', 'token:carol']);
  }, 90_000);
});
