import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkRebootRequired, parsePackages } from './reboot-required.js';

let run: string;
beforeEach(() => {
  run = mkdtempSync(join(tmpdir(), 'vm-reboot-'));
});
afterEach(() => rmSync(run, { recursive: true, force: true }));

const now = new Date('2026-03-10T00:00:00Z');

describe('checkRebootRequired', () => {
  it('is silent without the marker', async () => {
    expect(await checkRebootRequired({ runRoot: run, now: () => now })).toEqual([]);
  });

  it('reports a fresh marker as low with its packages', async () => {
    writeFileSync(join(run, 'reboot-required'), '*** System restart required ***\n');
    writeFileSync(join(run, 'reboot-required.pkgs'), 'linux-image-6.1.0-18-amd64\nlibc6\nlinux-image-6.1.0-18-amd64\n');
    utimesSync(join(run, 'reboot-required'), new Date('2026-03-09T00:00:00Z'), new Date('2026-03-09T00:00:00Z'));
    const [f] = await checkRebootRequired({ runRoot: run, now: () => now });
    expect(f).toMatchObject({
      check: 'reboot-required',
      severity: 'low',
      evidence: { package_count: 2, packages: 'linux-image-6.1.0-18-amd64, libc6', age_days: 1 },
    });
  });

  it('is medium once the reboot has been pending for staleAfterDays', async () => {
    writeFileSync(join(run, 'reboot-required'), '');
    utimesSync(join(run, 'reboot-required'), new Date('2026-03-01T00:00:00Z'), new Date('2026-03-01T00:00:00Z'));
    const [f] = await checkRebootRequired({ runRoot: run, now: () => now, staleAfterDays: 7 });
    expect(f).toMatchObject({ severity: 'medium', evidence: { package_count: 0, packages: null } });
  });

  it('parses package lists', () => {
    expect(parsePackages(' a\n\nb\na\n')).toEqual(['a', 'b']);
  });
});
