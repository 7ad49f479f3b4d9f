import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ExecFileFn } from './exec-file.js';
import { checkFailedUnits, parseFailedUnits, SYSTEMCTL_ARGS } from './failed-units.js';

// Real `systemctl list-units --failed --plain --no-legend --no-pager` output (systemd 252), plus a systemd 239
// style line with the ● marker some versions print even with --plain.
const OUTPUT = [
  'nginx.service            loaded failed failed A high performance web server and a reverse proxy server',
  'systemd-networkd-wait-online.service loaded failed failed Wait for Network to be Configured',
  '● backup@nightly.timer   loaded failed failed Nightly backup',
  '',
].join('\n');

let run: string;
beforeEach(() => {
  run = mkdtempSync(join(tmpdir(), 'vm-units-'));
  mkdirSync(join(run, 'systemd', 'system'), { recursive: true });
});
afterEach(() => rmSync(run, { recursive: true, force: true }));

describe('parseFailedUnits', () => {
  it('parses units, states and descriptions, dropping the ● marker', () => {
    expect(parseFailedUnits(OUTPUT)).toEqual([
      { unit: 'nginx.service', load: 'loaded', active: 'failed', sub: 'failed', description: 'A high performance web server and a reverse proxy server' },
      { unit: 'systemd-networkd-wait-online.service', load: 'loaded', active: 'failed', sub: 'failed', description: 'Wait for Network to be Configured' },
      { unit: 'backup@nightly.timer', load: 'loaded', active: 'failed', sub: 'failed', description: 'Nightly backup' },
    ]);
    expect(parseFailedUnits('')).toEqual([]);
  });
});

describe('checkFailedUnits', () => {
  it('runs systemctl without a shell and reports each failed unit', async () => {
    const calls: Array<{ file: string; args: readonly string[] }> = [];
    const execFile: ExecFileFn = async (file, args) => {
      calls.push({ file, args });
      return { stdout: OUTPUT, stderr: '', exitCode: 0 };
    };
    const findings = await checkFailedUnits({ runRoot: run, execFile, timeoutMs: 1000 });
    expect(calls).toEqual([{ file: 'systemctl', args: SYSTEMCTL_ARGS }]);
    expect(findings).toHaveLength(3);
    expect(findings[0]).toMatchObject({ check: 'failed-units', severity: 'medium', title: 'unit nginx.service failed', evidence: { unit: 'nginx.service', sub: 'failed' } });
  });

  it('caps individual findings and counts the rest', async () => {
    const execFile: ExecFileFn = async () => ({ stdout: OUTPUT, stderr: '', exitCode: 0 });
    const findings = await checkFailedUnits({ runRoot: run, execFile, timeoutMs: 1000, maxFindings: 1 });
    expect(findings.map((f) => f.title)).toEqual(['unit nginx.service failed', '2 more failed units']);
  });

  it('reports nothing when no unit failed', async () => {
    const execFile: ExecFileFn = async () => ({ stdout: '', stderr: '', exitCode: 0 });
    expect(await checkFailedUnits({ runRoot: run, execFile, timeoutMs: 1000 })).toEqual([]);
  });

  it('degrades to info when systemctl is missing (ENOENT)', async () => {
    const execFile: ExecFileFn = async () => {
      throw Object.assign(new Error('spawn systemctl ENOENT'), { code: 'ENOENT' });
    };
    const findings = await checkFailedUnits({ runRoot: run, execFile, timeoutMs: 1000 });
    expect(findings).toEqual([expect.objectContaining({ severity: 'info', title: 'source unavailable' })]);
  });

  it('degrades to info when systemctl cannot talk to systemd', async () => {
    const execFile: ExecFileFn = async () => ({
      stdout: '',
      stderr: 'System has not been booted with systemd as init system (PID 1). Can\'t operate.\nFailed to connect to bus: Host is down\n',
      exitCode: 1,
    });
    const [f] = await checkFailedUnits({ runRoot: run, execFile, timeoutMs: 1000 });
    expect(f).toMatchObject({ severity: 'info', title: 'source unavailable', evidence: { exit_code: 1 } });
    expect(f?.detail).toContain('System has not been booted with systemd');
  });

  it('does not run systemctl when systemd is not PID 1 (no /run/systemd/system)', async () => {
    let called = false;
    const execFile: ExecFileFn = async () => {
      called = true;
      return { stdout: '', stderr: '', exitCode: 0 };
    };
    const [f] = await checkFailedUnits({ runRoot: join(run, 'nothing'), execFile, timeoutMs: 1000 });
    expect(called).toBe(false);
    expect(f).toMatchObject({ severity: 'info', title: 'source unavailable' });
  });

  it('propagates other exec failures (the runner turns them into "check failed")', async () => {
    const execFile: ExecFileFn = async () => {
      throw Object.assign(new Error('spawn systemctl EACCES'), { code: 'EACCES' });
    };
    await expect(checkFailedUnits({ runRoot: run, execFile, timeoutMs: 1000 })).rejects.toThrow('EACCES');
  });
});
