/**
 * The real browser the console suites drive: Debian's Chromium through playwright-core, with the flags every suite
 * uses, and the required-part check (under CI a missing Chromium fails the run instead of skipping the suite).
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { requirePart } from './required-part.js';

export const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];

/** Whether Chromium is here (registers a failing test under CI when it is not); for `describe.skipIf`. */
export function requireChromium(suite: string): boolean {
  return requirePart({ name: `chromium (${CHROMIUM})`, present: existsSync(CHROMIUM), install: 'apt-get install chromium (.ci/run installs it when missing)', suite });
}

/** One browser profile in a fresh temp dir (cookies persist across its pages, as in an operator's browser). */
export function launchProfile(viewport = { width: 1280, height: 800 }): Promise<BrowserContext> {
  return chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'vm-chromium-')), { executablePath: CHROMIUM, headless: true, args: ARGS, viewport });
}

/** A browser for suites that open several separate contexts (one per operator). */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
}
