/**
 * Check `failed-units`: systemd units in the `failed` state, from
 * `systemctl list-units --failed --plain --no-legend --no-pager` (run directly, no shell).
 * Hosts without a running systemd (containers, other inits) get one `info` "source unavailable" finding.
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { Finding } from '../../protocol/scan.js';
import type { ExecFileFn } from './exec-file.js';
import { createFinding, errnoCode, sourceUnavailable } from './finding.js';

export const FAILED_UNITS_CHECK = 'failed-units';

export interface FailedUnitsOptions {
  /** Where `systemd/system` lives when systemd is PID 1 (sd_booted(3) tests exactly this directory). */
  runRoot: string;
  execFile: ExecFileFn;
  timeoutMs: number;
  signal?: AbortSignal;
  /** At most this many per-unit findings; the rest are counted in one summary finding. */
  maxFindings?: number;
}

export interface FailedUnit {
  unit: string;
  load: string;
  active: string;
  sub: string;
  description: string;
}

export const SYSTEMCTL_ARGS = ['list-units', '--failed', '--plain', '--no-legend', '--no-pager'] as const;

/**
 * Parses `systemctl list-units --plain --no-legend` output: `UNIT LOAD ACTIVE SUB DESCRIPTION…` per line.
 * Older systemd versions prefix failed units with `●` (or `*` on non-UTF-8 terminals) even with `--plain`, so a
 * leading marker is dropped.
 */
export function parseFailedUnits(stdout: string): FailedUnit[] {
  const units: FailedUnit[] = [];
  for (const rawLine of stdout.split('\n')) {
    const line = rawLine.replace(/^\s*(?:●|\*)?\s*/u, '').trimEnd();
    if (line === '') continue;
    const m = /^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(line);
    if (!m) continue;
    units.push({ unit: m[1]!, load: m[2]!, active: m[3]!, sub: m[4]!, description: m[5] ?? '' });
  }
  return units;
}

export async function checkFailedUnits(options: FailedUnitsOptions): Promise<Finding[]> {
  const maxFindings = options.maxFindings ?? 50;
  const systemdDir = join(options.runRoot, 'systemd', 'system');
  try {
    await access(systemdDir);
  } catch {
    return [sourceUnavailable(FAILED_UNITS_CHECK, `systemd is not running on this host (no ${systemdDir}), so there are no units to check.`)];
  }

  let result;
  try {
    result = await options.execFile('systemctl', SYSTEMCTL_ARGS, {
      timeoutMs: options.timeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      return [sourceUnavailable(FAILED_UNITS_CHECK, 'systemctl is not installed or not on PATH.')];
    }
    throw err;
  }
  if (result.exitCode !== 0) {
    // e.g. "System has not been booted with systemd as init system" or no D-Bus: systemd state is unreadable.
    const why = result.stderr.trim().split('\n')[0] ?? '';
    return [
      sourceUnavailable(FAILED_UNITS_CHECK, `systemctl exited with status ${String(result.exitCode)}: ${why || '(no message)'}`, {
        exit_code: result.exitCode,
      }),
    ];
  }

  const failed = parseFailedUnits(result.stdout);
  const findings = failed.slice(0, maxFindings).map((u) =>
    createFinding({
      check: FAILED_UNITS_CHECK,
      severity: 'medium',
      title: `unit ${u.unit} failed`,
      detail: `${u.unit}${u.description ? ` (${u.description})` : ''} is ${u.active}/${u.sub}. Inspect with: journalctl -u ${u.unit}`,
      evidence: { unit: u.unit, load: u.load, active: u.active, sub: u.sub, description: u.description },
    }),
  );
  if (failed.length > maxFindings) {
    findings.push(
      createFinding({
        check: FAILED_UNITS_CHECK,
        severity: 'medium',
        title: `${failed.length - maxFindings} more failed units`,
        detail: `${failed.length} units are failed; only the first ${maxFindings} are listed individually.`,
        evidence: { total: failed.length, listed: maxFindings },
      }),
    );
  }
  return findings;
}
