/**
 * Check `reboot-required`: the Debian/Ubuntu marker `/run/reboot-required` (written by package maintainer scripts,
 * e.g. after a kernel or libc upgrade) and its companion `.pkgs` list. A fresh marker is `low`; one older than
 * `staleAfterDays` is `medium`, because the host has been running outdated code for that long.
 * Without the marker there is no finding: on distributions that do not write it the check is silent.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Finding } from '../../protocol/scan.js';
import { createFinding, errnoCode } from './finding.js';

export const REBOOT_REQUIRED_CHECK = 'reboot-required';

export interface RebootRequiredOptions {
  /** /run (also reachable as /var/run, a symlink to it on every systemd-era distribution). */
  runRoot: string;
  now: () => Date;
  staleAfterDays?: number;
  maxPackagesBytes?: number;
}

/** Unique, non-empty package names from a reboot-required.pkgs body, in first-seen order. */
export function parsePackages(text: string): string[] {
  return [...new Set(text.split('\n').map((l) => l.trim()).filter((l) => l !== ''))];
}

export async function checkRebootRequired(options: RebootRequiredOptions): Promise<Finding[]> {
  const marker = join(options.runRoot, 'reboot-required');
  let since: Date;
  try {
    since = (await stat(marker)).mtime;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
  let packages: string[] = [];
  try {
    const text = await readFile(`${marker}.pkgs`, 'utf8');
    packages = parsePackages(text.slice(0, options.maxPackagesBytes ?? 64 * 1024));
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  const ageDays = Math.max(0, (options.now().getTime() - since.getTime()) / 86_400_000);
  const stale = ageDays >= (options.staleAfterDays ?? 7);
  const list = packages.join(', ');
  return [
    createFinding({
      check: REBOOT_REQUIRED_CHECK,
      severity: stale ? 'medium' : 'low',
      title: 'reboot required',
      detail: `A reboot has been pending for ${ageDays.toFixed(1)} days${packages.length ? ` for: ${list}` : ''}.`,
      evidence: { marker, since: since.toISOString(), age_days: Math.round(ageDays * 10) / 10, package_count: packages.length, packages: list || null },
    }),
  ];
}
