/**
 * The shipped units are valid and hardened: `systemd-analyze verify` on both (ExecStart= /usr/bin/<program> from the
 * packages rewritten to this checkout's dist/ and node binary, so the paths exist), `systemd-analyze security --offline=true` exposure recorded and held
 * to a ceiling, and the sysusers/tmpfiles snippets applied to a scratch root.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const HERE = join(ROOT, 'systemd');
const INSTALL_HINT = 'systemd-analyze is required for these tests: apt-get install systemd (.ci/run installs it)';

/** Exposure ceilings (systemd-analyze security, 0 = locked down, 10 = exposed). See docs/DEPLOY.md. */
const CEILING: Record<string, number> = { 'vaultmesh-cc.service': 2.0, 'vaultmesh-agent.service': 2.0 };

let tmp: string;

function run(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, SYSTEMD_LOG_COLOR: '0', SYSTEMD_COLORS: '0', NO_COLOR: '1' } });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}. ${INSTALL_HINT}`);
  return r;
}

const DIST_MAIN: Record<string, string> = { 'vaultmesh-cc': 'dist/command-center/main.js', 'vaultmesh-agent': 'dist/node-agent/main.js' };

/** The unit as installed on this machine: ExecStart= pointing at the real node and dist/. */
function localUnit(name: string): string {
  const text = readFileSync(join(HERE, name), 'utf8');
  const rewritten = text.replace(/^ExecStart=\/usr\/bin\/(vaultmesh-cc|vaultmesh-agent)\b/m, (_, bin: string) => `ExecStart=${process.execPath} ${ROOT}/${DIST_MAIN[bin]}`);
  expect(rewritten, `${name}: ExecStart= not in the expected /usr/bin/<program> form of the packages`).not.toBe(text);
  const dir = join(tmp, 'units');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, rewritten);
  return path;
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'vm-units-'));
  if (!existsSync(join(ROOT, 'dist/command-center/main.js')) || !existsSync(join(ROOT, 'dist/node-agent/main.js'))) {
    spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.json')], { cwd: ROOT, stdio: 'ignore' });
  }
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('systemd units', () => {
  it('systemd-analyze is installed', () => {
    const r = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
    expect(r.error, INSTALL_HINT).toBeUndefined();
    expect(r.status, INSTALL_HINT).toBe(0);
  });

  it.each(Object.keys(CEILING))('%s passes systemd-analyze verify', (name) => {
    const path = localUnit(name);
    const r = run('systemd-analyze', ['verify', path]);
    // verify prints problems of the unit itself on stderr; drop lines about other units on this machine.
    const own = r.stderr.split('\n').filter((l) => l.trim() && l.includes(name));
    expect({ status: r.status, problems: own }).toEqual({ status: 0, problems: [] });
  });

  it.each(Object.keys(CEILING))('%s: systemd-analyze security --offline=true exposure within its ceiling', (name) => {
    const path = localUnit(name);
    const help = run('systemd-analyze', ['security', '--help']);
    expect(help.stdout, 'this systemd-analyze has no --offline (systemd < 250): read the figures in docs/DEPLOY.md').toContain('--offline');
    const r = run('systemd-analyze', ['security', '--offline=true', '--no-pager', path]);
    const m = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(r.stdout);
    expect(m, r.stdout + r.stderr).not.toBeNull();
    const exposure = Number(m![1]);
    console.log(`systemd-analyze security --offline=true ${name}: exposure ${exposure}`);
    expect(exposure).toBeLessThanOrEqual(CEILING[name]!);
  });

  it('the hardening the docs promise is there', () => {
    const cc = readFileSync(join(HERE, 'vaultmesh-cc.service'), 'utf8');
    for (const line of ['Type=notify', 'NotifyAccess=all', 'WatchdogSec=', 'Restart=on-failure', 'StateDirectory=vaultmesh-cc', 'LogsDirectory=vaultmesh', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateTmp=yes', 'PrivateDevices=yes', 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6', 'SystemCallFilter=@system-service', 'SystemCallFilter=setpriority', 'CapabilityBoundingSet=\n', 'MemoryDenyWriteExecute=no', 'User=vaultmesh-cc']) {
      expect(cc, line).toContain(line);
    }
    const agent = readFileSync(join(HERE, 'vaultmesh-agent.service'), 'utf8');
    for (const line of ['Restart=on-failure', 'StateDirectory=vaultmesh', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'CapabilityBoundingSet=CAP_DAC_READ_SEARCH', 'SystemCallFilter=@system-service', 'User=vaultmesh-agent', '--settings /etc/vaultmesh/agent.env']) {
      expect(agent, line).toContain(line);
    }
  });

  it('sysusers creates both service users in a scratch root', () => {
    const root = join(tmp, 'root');
    mkdirSync(join(root, 'etc'), { recursive: true });
    const r = run('systemd-sysusers', [`--root=${root}`, join(HERE, 'vaultmesh.sysusers.conf')]);
    expect(r.status, r.stderr).toBe(0);
    const passwd = readFileSync(join(root, 'etc/passwd'), 'utf8');
    expect(passwd).toMatch(/^vaultmesh-cc:x:\d+:\d+:[^:]*:\/:\/usr\/sbin\/nologin$/m);
    expect(passwd).toMatch(/^vaultmesh-agent:x:\d+:\d+:/m);
  });

  it.skipIf(process.getuid?.() !== 0)('tmpfiles creates /etc/vaultmesh in a scratch root (needs root to chown)', () => {
    const root = join(tmp, 'root2');
    mkdirSync(join(root, 'etc'), { recursive: true });
    expect(run('systemd-sysusers', [`--root=${root}`, join(HERE, 'vaultmesh.sysusers.conf')]).status).toBe(0);
    const r = run('systemd-tmpfiles', [`--root=${root}`, '--create', join(HERE, 'vaultmesh.tmpfiles.conf')]);
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(join(root, 'etc/vaultmesh'))).toBe(true);
  });

  it('env examples name only settings the programs read', () => {
    const names = (file: string) => [...readFileSync(join(HERE, file), 'utf8').matchAll(/^#?(VAULTMESH_[A-Z0-9_]+)=/gm)].map((m) => m[1]!);
    const ccSrc = readFileSync(join(ROOT, 'command-center/config.ts'), 'utf8');
    const agentSrc = readFileSync(join(ROOT, 'node-agent/config.ts'), 'utf8');
    const unknownCc = names('vaultmesh-cc.env.example').filter((n) => !ccSrc.includes(`'${n}'`));
    const unknownAgent = names('agent.env.example').filter((n) => !agentSrc.includes(`'${n}'`));
    expect({ unknownCc, unknownAgent }).toEqual({ unknownCc: [], unknownAgent: [] });
    for (const n of ['VAULTMESH_CC_URL', 'VAULTMESH_ROOT', 'VAULTMESH_HEARTBEAT_SECS', 'VAULTMESH_OS_PROFILE', 'VAULTMESH_CF_ACCESS_CLIENT_ID', 'VAULTMESH_CF_ACCESS_CLIENT_SECRET']) {
      expect(names('agent.env.example')).toContain(n);
    }
  });
});
