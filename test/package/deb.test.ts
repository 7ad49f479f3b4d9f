/**
 * The Debian packages (scripts/package-deb.mjs): what dpkg-deb --info/--contents show, lintian, and on a root
 * machine where they are not installed yet (the CI machine), the real thing: dpkg -i both, the installed units
 * verified, the installed programs run as their service users against the package paths, then dpkg -r keeps the
 * data and dpkg --purge deletes exactly what docs/DEPLOY.md says.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, assertBuilt } from '../process-helpers.js';
import { enrollAndHeartbeat, run, startCenter, type AsUser } from './fleet.js';
// @ts-expect-error a build script without type declarations
import { packageDeb } from '../../scripts/package-deb.mjs';
// @ts-expect-error a build script without type declarations
import { buildSea } from '../../scripts/build-sea.mjs';

const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
const tmp = mkdtempSync(join(tmpdir(), 'vm-deb-'));
const AGENT_DEB = join(tmp, 'deb', `vaultmesh-agent_${version}_amd64.deb`);
const CC_DEB = join(tmp, 'deb', `vaultmesh-cc_${version}_amd64.deb`);
/** Everything the packages and their services write outside /usr: what purge must leave behind (nothing). */
const DATA = ['/var/lib/vaultmesh-cc', '/var/log/vaultmesh', '/var/lib/vaultmesh', '/etc/vaultmesh'];

function sh(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.error) throw new Error(`${cmd}: ${r.error.message} (apt-get install dpkg-dev lintian; .ci/run installs them)`);
  return r;
}

function controlField(info: string, field: string): string {
  const m = new RegExp(`^ ${field}: (.*)$`, 'm').exec(info);
  return m ? m[1]! : '';
}

/** `dpkg-deb --contents` as path → "mode owner/group". */
function contents(deb: string): Map<string, string> {
  const r = sh('dpkg-deb', ['--contents', deb]);
  expect(r.status, r.stderr).toBe(0);
  return new Map(
    r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/))
      .map((f) => [f[5]!.replace(/^\./, '').replace(/\/$/, '') || '/', `${f[0]} ${f[1]}`]),
  );
}

beforeAll(async () => {
  assertBuilt();
  await buildSea({ out: join(tmp, 'sea') });
  await packageDeb({ out: join(tmp, 'deb'), sea: join(tmp, 'sea') });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('dpkg-deb --info / --contents', () => {
  it('vaultmesh-agent: the package version, no nodejs, agent.env a conffile, maintainer scripts', () => {
    const r = sh('dpkg-deb', ['--info', AGENT_DEB]);
    expect(r.status, r.stderr).toBe(0);
    expect(controlField(r.stdout, 'Package')).toBe('vaultmesh-agent');
    expect(controlField(r.stdout, 'Version')).toBe(version);
    expect(controlField(r.stdout, 'Architecture')).toBe('amd64');
    const depends = controlField(r.stdout, 'Depends');
    expect(depends).toMatch(/libc6 \(>= [\d.]+\)/);
    expect(depends).not.toMatch(/node/);
    expect(r.stdout).toMatch(/\bconffiles\b/);
    for (const script of ['postinst', 'prerm', 'postrm']) expect(r.stdout).toMatch(new RegExp(`\\b${script}\\b`));
    const conffiles = sh('dpkg-deb', ['--info', AGENT_DEB, 'conffiles']);
    expect(conffiles.stdout.trim()).toBe('/etc/vaultmesh/agent.env');
    const files = contents(AGENT_DEB);
    expect(files.get('/usr/bin/vaultmesh-agent')).toBe('-rwxr-xr-x root/root');
    expect(files.get('/lib/systemd/system/vaultmesh-agent.service')).toBe('-rw-r--r-- root/root');
    expect(files.get('/etc/vaultmesh/agent.env')).toBe('-rw-r----- root/root');
    expect(files.has('/usr/lib/sysusers.d/vaultmesh-agent.conf')).toBe(true);
    expect(files.has('/usr/share/man/man1/vaultmesh-agent.1.gz')).toBe(true);
    expect([...files.keys()].filter((f) => /vaultmesh-cc|^\/usr\/bin\/vaultmesh$|node_modules|\.js$/.test(f))).toEqual([]);
  });

  it('vaultmesh-cc: center and CLI, unit, cc.env a conffile', () => {
    const r = sh('dpkg-deb', ['--info', CC_DEB]);
    expect(controlField(r.stdout, 'Package')).toBe('vaultmesh-cc');
    expect(controlField(r.stdout, 'Version')).toBe(version);
    expect(controlField(r.stdout, 'Depends')).not.toMatch(/node/);
    const files = contents(CC_DEB);
    expect(files.get('/usr/bin/vaultmesh-cc')).toBe('-rwxr-xr-x root/root');
    // One runtime for both: the CLI is the center's executable called by another name.
    expect(files.get('/usr/bin/vaultmesh')).toBe('lrwxrwxrwx root/root');
    expect(sh('dpkg-deb', ['--contents', CC_DEB]).stdout).toMatch(/\.\/usr\/bin\/vaultmesh -> vaultmesh-cc$/m);
    expect(files.get('/lib/systemd/system/vaultmesh-cc.service')).toBe('-rw-r--r-- root/root');
    expect(files.get('/etc/vaultmesh/cc.env')).toBe('-rw-r----- root/root');
    expect(files.has('/usr/share/doc/vaultmesh-cc/examples/policy.json')).toBe(true);
  });

  it('lintian: no errors or warnings (overrides are commented in packaging/deb/*/lintian-overrides)', () => {
    for (const deb of [AGENT_DEB, CC_DEB]) {
      const r = sh('lintian', ['--fail-on', 'error,warning', deb]);
      expect({ status: r.status, tags: r.stdout.split('\n').filter((l) => /^[EW]: /.test(l)) }).toEqual({ status: 0, tags: [] });
    }
  });
});

const alreadyThere = () => DATA.filter((d) => existsSync(d)).concat(['vaultmesh-agent', 'vaultmesh-cc'].filter((p) => sh('dpkg-query', ['-W', '-f=${Status}', p]).stdout.includes('installed')));
const canInstall = process.getuid?.() === 0 && existsSync('/usr/bin/dpkg') && alreadyThere().length === 0;

describe.runIf(canInstall)('dpkg -i on this machine (root, packages not installed before), then purge', () => {
  const idOf = (user: string): AsUser => {
    const r = sh('id', ['-u', user]);
    const g = sh('id', ['-g', user]);
    return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
  };
  let installed = false;

  beforeAll(() => {
    const r = sh('dpkg', ['-i', AGENT_DEB, CC_DEB]);
    installed = true;
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });
  afterAll(() => {
    // Whatever failed above, leave the machine as it was.
    if (installed) sh('dpkg', ['--purge', 'vaultmesh-agent', 'vaultmesh-cc']);
  });

  it('creates the service users, the state and log dirs and the env files with their owners and modes', () => {
    const mode = (p: string) => {
      const s = statSync(p);
      return { mode: (s.mode & 0o7777).toString(8), uid: s.uid, gid: s.gid };
    };
    const cc = idOf('vaultmesh-cc');
    const agent = idOf('vaultmesh-agent');
    expect(mode('/var/lib/vaultmesh-cc')).toEqual({ mode: '700', uid: cc.uid, gid: cc.gid });
    expect(mode('/var/log/vaultmesh')).toEqual({ mode: '750', uid: cc.uid, gid: cc.gid });
    expect(mode('/etc/vaultmesh/cc.env')).toEqual({ mode: '640', uid: 0, gid: cc.gid });
    expect(mode('/etc/vaultmesh/agent.env')).toEqual({ mode: '640', uid: 0, gid: agent.gid });
    expect(sh('getent', ['passwd', 'vaultmesh-agent']).stdout).toMatch(/:\/usr\/sbin\/nologin$/m);
  });

  it('systemd-analyze verify accepts the installed units', () => {
    for (const unit of ['/lib/systemd/system/vaultmesh-cc.service', '/lib/systemd/system/vaultmesh-agent.service']) {
      const r = sh('systemd-analyze', ['verify', unit]);
      const own = r.stderr.split('\n').filter((l) => l.trim() && l.includes('vaultmesh'));
      expect({ status: r.status, problems: own }).toEqual({ status: 0, problems: [] });
    }
  });

  it.each(['vaultmesh-cc', 'vaultmesh-agent', 'vaultmesh'])('/usr/bin/%s --version', async (name) => {
    const r = await run(`/usr/bin/${name}`, ['--version'], { env: {}, cwd: '/' });
    expect(r.stdout.split(' ')[0]).toBe(`${name}/${version}`);
  });

  it('the installed agent (as vaultmesh-agent) enrolls and heartbeats against the installed center (as vaultmesh-cc)', async () => {
    // What the units' StateDirectory= would create at first start (no systemd as PID 1 here).
    const agent = idOf('vaultmesh-agent');
    expect(sh('install', ['-d', '-m', '0700', '-o', 'vaultmesh-agent', '-g', 'vaultmesh-agent', '/var/lib/vaultmesh', '/var/lib/vaultmesh/agent']).status).toBe(0);
    const center = await startCenter('/usr/bin/vaultmesh-cc', ['--log-dir', '/var/log/vaultmesh', '--state-dir', '/var/lib/vaultmesh-cc'], { env: {}, cwd: '/', as: idOf('vaultmesh-cc') });
    try {
      const node = await enrollAndHeartbeat(
        { cc: '/usr/bin/vaultmesh-cc', agent: '/usr/bin/vaultmesh-agent', cli: '/usr/bin/vaultmesh' },
        { url: center.url, ccStateDir: '/var/lib/vaultmesh-cc', agentStateDir: '/var/lib/vaultmesh/agent', nodeId: 'deb-1', env: {}, cwd: '/', agentAs: agent },
      );
      expect(node).toMatchObject({ status: 'ok', agent_version: version });
    } finally {
      expect(await center.stop()).toBe(0);
    }
    expect(statSync('/var/lib/vaultmesh/agent/node-key.pem').uid).toBe(agent.uid);
  });

  it('dpkg -r keeps keys, journals and settings; dpkg --purge deletes them and says so; the users stay', () => {
    const kept = ['/var/lib/vaultmesh-cc/cc-key.pem', '/var/lib/vaultmesh-cc/admin.token', '/var/log/vaultmesh/events.jsonl', '/var/lib/vaultmesh/agent/node-key.pem', '/etc/vaultmesh/cc.env', '/etc/vaultmesh/agent.env'];
    for (const f of kept) expect(existsSync(f), f).toBe(true);
    const removed = sh('dpkg', ['-r', 'vaultmesh-agent', 'vaultmesh-cc']);
    expect(removed.status, removed.stderr).toBe(0);
    for (const bin of ['/usr/bin/vaultmesh-cc', '/usr/bin/vaultmesh-agent', '/usr/bin/vaultmesh']) expect(existsSync(bin), bin).toBe(false);
    expect(kept.filter((f) => !existsSync(f))).toEqual([]);

    const purged = sh('dpkg', ['--purge', 'vaultmesh-agent', 'vaultmesh-cc']);
    expect(purged.status, purged.stderr).toBe(0);
    const said = purged.stdout + purged.stderr;
    for (const dir of ['/var/lib/vaultmesh/agent', '/var/lib/vaultmesh-cc', '/var/log/vaultmesh', '/etc/vaultmesh/agent.env', '/etc/vaultmesh/cc.env']) expect(said).toContain(`purge deletes ${dir}`);
    expect(DATA.filter((d) => existsSync(d))).toEqual([]);
    expect(sh('getent', ['passwd', 'vaultmesh-cc']).status).toBe(0);
    expect(sh('getent', ['passwd', 'vaultmesh-agent']).status).toBe(0);
  });
});
