/**
 * Rotating the center key from the console, in a real headless Chromium against a real center: only an admin is
 * offered the form, the browser will not send it without the confirmation, the server refuses it without one, a
 * confirmed rotation answers inline and shows in the live event feed, and a session without the admin scope is
 * refused (403) even when it posts the form by hand.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { startCenter, type RunningCenter } from '../command-center/center.js';
import { resolveCenterConfig } from '../command-center/config.js';
import { launchProfile, requireChromium } from './chromium.js';

const quiet = { info() {}, warn() {}, error() {} };
const SUITE = 'center key rotation from the console in headless Chromium';
const hasChromium = requireChromium(SUITE);

describe.skipIf(!hasChromium)(SUITE, () => {
  let dir: string;
  let center: RunningCenter;
  let adminToken: string;
  let browser: BrowserContext;

  const api = (path: string, body?: unknown) =>
    fetch(center.url + path, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  async function signIn(token: string): Promise<Page> {
    const page = await browser.newPage();
    await page.goto(center.url + '/console/login');
    await page.fill('#token', token);
    await page.click('button[type=submit]');
    await page.waitForURL(center.url + '/console');
    await page.waitForFunction(() => document.documentElement.dataset.sse === 'live');
    return page;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vm-keyrot-console-'));
    center = await startCenter(resolveCenterConfig({ port: 0, logDir: join(dir, 'logs'), stateDir: join(dir, 'state'), fsync: 'off' }, {}), { log: quiet, keepaliveMs: 1000 });
    adminToken = readFileSync(center.adminTokenFile, 'utf8').trim();
    browser = await launchProfile({ width: 1280, height: 900 });
  });

  afterAll(async () => {
    await browser?.close();
    await center?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('an admin rotates the key with a confirmation; the answer and the feed line arrive without a reload', async () => {
    const page = await signIn(adminToken);
    const before = ((await (await api('/api/keys')).json()) as { key_id: string }).key_id;
    expect(await page.textContent('#key-form')).toBeTruthy();
    expect(await page.textContent('.key-form .hint')).toContain(before);

    // Without the confirmation the browser does not send it.
    await page.click('#key-form button[type=submit]');
    expect(await page.$eval('#key-confirm', (el) => (el as HTMLInputElement).validity.valueMissing)).toBe(true);
    expect(((await (await api('/api/keys')).json()) as { rotations: unknown[] }).rotations).toEqual([]);

    await page.check('#key-confirm');
    await page.click('#key-form button[type=submit]');
    await page.waitForSelector('#key-result .result.ok');
    const keys = (await (await api('/api/keys')).json()) as { key_id: string; rotations: Array<{ author: string; statement: { old_key_id: string; new_key_id: string } }> };
    expect(keys.key_id).not.toBe(before);
    expect(keys.rotations).toMatchObject([{ author: 'admin', statement: { old_key_id: before, new_key_id: keys.key_id } }]);
    expect(await page.textContent('#key-result')).toContain(`${before} → ${keys.key_id} (#1)`);
    await expect.poll(() => page.textContent('#feed')).toContain(`center key rotated ${before} → ${keys.key_id} (#1)`);
    // The confirmation is cleared: a second rotation needs a new one.
    await expect.poll(() => page.isChecked('#key-confirm')).toBe(false);
    // The page still names the key it showed: submitting it again is refused, never a second rotation.
    await page.check('#key-confirm');
    await page.click('#key-form button[type=submit]');
    await page.waitForSelector('#key-result .result.error');
    expect(await page.textContent('#key-result')).toContain('CENTER_KEY_CHANGED');
    expect(((await (await api('/api/keys')).json()) as { key_id: string; rotations: unknown[] })).toMatchObject({ key_id: keys.key_id, rotations: [{}] });
    // The API the same way: a retried POST naming the replaced key changes nothing.
    const retried = await api('/api/keys/rotate', { from_key_id: before });
    expect(retried.status).toBe(409);
    expect(((await retried.json()) as { error: { code: string } }).error.code).toBe('CENTER_KEY_CHANGED');
    expect(((await (await api('/api/keys')).json()) as { rotations: unknown[] }).rotations).toHaveLength(1);
    await page.close();
  });

  test('without the admin scope there is no form, and a hand-made post is refused (403); without confirm=yes it is 400', async () => {
    const created = (await (await api('/api/tokens', { name: 'viewer', scopes: ['nodes:read', 'events:read'] })).json()) as { token: string };
    const page = await signIn(created.token);
    expect(await page.$('#key-form')).toBeNull();
    const post = (confirm: boolean) =>
      page.evaluate(async (withConfirm) => {
        const csrf = (document.querySelector('input[name=_csrf]') as HTMLInputElement | null)?.value ?? '';
        const body = new URLSearchParams({ _csrf: csrf, ...(withConfirm ? { confirm: 'yes' } : {}) });
        const r = await fetch('/console/keys/rotate', { method: 'POST', body, headers: { 'hx-request': 'true' } });
        return { status: r.status, text: await r.text() };
      }, confirm);
    const refused = await post(true);
    expect(refused.status).toBe(403);
    expect(refused.text).toContain('admin scope');
    await page.close();

    const admin = await signIn(adminToken);
    const unconfirmed = await admin.evaluate(async () => {
      const csrf = (document.querySelector('input[name=_csrf]') as HTMLInputElement).value;
      const r = await fetch('/console/keys/rotate', { method: 'POST', body: new URLSearchParams({ _csrf: csrf }), headers: { 'hx-request': 'true' } });
      return { status: r.status, text: await r.text() };
    });
    expect(unconfirmed.status).toBe(400);
    expect(unconfirmed.text).toContain('CONFIRMATION_REQUIRED');
    expect(((await (await api('/api/keys')).json()) as { rotations: unknown[] }).rotations).toHaveLength(1);
    await admin.close();
  });
});
