/**
 * The mission console at 10,000 nodes in a real headless Chromium against a real center (port 0): the list is a page
 * of the fleet (pager, next page, sort, status filter, search, all as plain links and GET forms), and the live
 * stream patches a row the page shows while a heartbeat from a node on another page sends nothing (checked in the
 * browser's DOM and, byte for byte, on a second real SSE client with the same view). The fleet is seeded in-process
 * through `services.submit` (journaled and applied like agent traffic), which takes seconds, not minutes.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { startCenter, type RunningCenter } from '../command-center/center.js';
import { resolveCenterConfig } from '../command-center/config.js';
import { heartbeatBody } from './helpers.js';
import { launchProfile, requireChromium } from './chromium.js';

const quiet = { info() {}, warn() {}, error() {} };
const N = 10_000;
const id = (i: number) => `node-${String(i).padStart(5, '0')}`;
/** Hostnames repeat (three VMs per name), as in a fleet of identical images. */
const hostOf = (i: number) => `vm-${String(Math.floor(i / 3)).padStart(4, '0')}`;
/** Every 50th node reports failed services: ATTN. */
const attnNode = (i: number) => i % 50 === 7;

let dir: string;
let center: RunningCenter;
let adminToken: string;
let browser: BrowserContext;
let page: Page;

const rowIds = (p: Page) => p.$$eval('#node-list > li[id^="node-"]', (els) => els.map((e) => e.id.slice('node-'.length)));
const heartbeat = (i: number, servicesOk = true) =>
  center.services.submit({
    kind: 'heartbeat',
    node_id: id(i),
    author: `node:${id(i)}`,
    body: heartbeatBody(id(i), { hostname: hostOf(i), services_ok: servicesOk, services: { 'nginx.service': servicesOk ? 'active' : 'failed' } }),
  });

const SUITE = 'console at 10,000 nodes in headless Chromium';
const hasChromium = requireChromium(SUITE);

describe.skipIf(!hasChromium)(SUITE, () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vm-console-scale-'));
    center = await startCenter(resolveCenterConfig({ port: 0, logDir: join(dir, 'logs'), stateDir: join(dir, 'state'), fsync: 'off', rateLimit: false }, {}), { log: quiet, keepaliveMs: 1000 });
    adminToken = readFileSync(center.adminTokenFile, 'utf8').trim();
    const submit = center.services.submit;
    for (let from = 0; from < N; from += 1000) {
      const batch: Promise<unknown>[] = [];
      for (let i = from; i < from + 1000; i++) {
        batch.push(
          submit({
            kind: 'enrollment',
            node_id: id(i),
            author: 'admin',
            body: { action: 'request', hostname: hostOf(i), os_profile: i % 2 ? 'debian' : 'ubuntu', public_key: 'ab'.repeat(32), key_id: 'k'.repeat(16), agent_version: '0.1.0', facts: {}, auto_approved: true },
          }),
        );
      }
      await Promise.all(batch);
      await Promise.all(Array.from({ length: 1000 }, (_, k) => heartbeat(from + k, !attnNode(from + k))));
    }
    expect(center.services.state.nodes.size).toBe(N);
    browser = await launchProfile();
    page = browser.pages()[0] ?? (await browser.newPage());
    await page.goto(center.url + '/console/login');
    await page.fill('#token', adminToken);
    await page.click('button[type=submit]');
    await page.waitForURL(center.url + '/console');
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await center?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the first page is 50 rows of 10,000 with a pager; Next goes to the next 50', async () => {
    await page.waitForFunction(() => document.documentElement.dataset.sse === 'live');
    const first = await rowIds(page);
    expect(first).toHaveLength(50);
    expect(await page.textContent('#node-pager .range')).toContain(`1–50 of ${N}`);
    // Worst first: the ATTN nodes lead the default order.
    expect(await page.$$eval('#node-list > li.row', (els) => els.map((e) => e.getAttribute('data-status')))).toEqual(Array(50).fill('attn'));
    await page.click('#node-pager a[rel=next]');
    await page.waitForURL(/page=2/);
    const second = await rowIds(page);
    expect(second).toHaveLength(50);
    expect(second.filter((x) => first.includes(x))).toEqual([]);
    expect(await page.textContent('#node-pager .range')).toContain(`51–100 of ${N}`);
  });

  test('status filter, search and sort run on the server and keep the other parameters', async () => {
    await page.goto(center.url + '/console');
    await page.selectOption('#f-status', 'attn'); // console.js submits the GET form on change
    await page.waitForURL(/status=attn/);
    const attn = Array.from({ length: N }, (_, i) => i).filter(attnNode).length;
    expect(await page.textContent('#node-pager .range')).toContain(`of ${attn}`);
    expect(new Set(await page.$$eval('#node-list > li.row', (els) => els.map((e) => e.getAttribute('data-status'))))).toEqual(new Set(['attn']));

    await page.goto(center.url + '/console');
    await page.fill('#f-q', 'node-0999');
    await page.press('#f-q', 'Enter');
    await page.waitForURL(/q=node-0999/);
    expect((await rowIds(page)).sort()).toEqual(Array.from({ length: 10 }, (_, k) => id(9990 + k)));

    await page.selectOption('#f-sort', 'name');
    await page.waitForURL(/sort=name/);
    expect(page.url()).toContain('q=node-0999'); // the search stays
    const hosts = await page.$$eval('#node-list > li.row .host', (els) => els.map((e) => e.textContent!.trim()));
    expect(hosts).toEqual([...hosts].sort());
    // Rows sharing a hostname are told apart by their id.
    expect(hosts[0]).toMatch(/^vm-3330 node-09990$/);
  });

  test('a live update arrives for a shown row and not for a hidden one', async () => {
    const view = 'sort=name&size=25';
    await page.goto(`${center.url}/console?${view}`);
    await page.waitForFunction(() => document.documentElement.dataset.sse === 'live');
    const shown = await rowIds(page);
    expect(shown).toHaveLength(25);
    const shownIdx = Number(shown[3]!.slice(5));
    const hiddenIdx = 5000; // far down the name order: page 67 or so
    expect(shown).not.toContain(id(hiddenIdx));

    // A second real SSE client with the same view, to see exactly what the stream sends.
    const ac = new AbortController();
    const res = await fetch(`${center.url}/console/stream?${view}`, { headers: { authorization: `Bearer ${adminToken}` }, signal: ac.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let seen = '';
    const reading = (async () => {
      const dec = new TextDecoder();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          seen += dec.decode(value, { stream: true });
        }
      } catch {
        // aborted
      }
    })();
    await expect.poll(() => seen.includes('id="node-list"'), { timeout: 5000 }).toBe(true); // its full state
    const afterFull = () => seen.slice(seen.lastIndexOf('id="node-pager"'));

    await heartbeat(hiddenIdx, false);
    await heartbeat(shownIdx, false);
    await page.waitForSelector(`#node-${id(shownIdx)}.s-attn`, { timeout: 5000 });
    await expect.poll(() => afterFull().includes(`<li id="node-${id(shownIdx)}"`), { timeout: 5000 }).toBe(true);
    await new Promise((r) => setTimeout(r, 1500)); // a status scan, in case it would drag the hidden row in
    expect(await page.$(`#node-${id(hiddenIdx)}`)).toBeNull();
    // No row fragment for it (the attention panel and the KPIs are fleet-wide and may well name it).
    expect(afterFull()).not.toContain(`id="node-${id(hiddenIdx)}"`);
    ac.abort();
    await reading;
  });
});
