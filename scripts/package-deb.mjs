#!/usr/bin/env node
// Debian packages with dpkg-deb, from the single executables (scripts/build-sea.mjs) and the files in systemd/ and
// packaging/deb/: vaultmesh-agent_<v>_amd64.deb (the agent, no nodejs dependency) and vaultmesh-cc_<v>_amd64.deb
// (center and CLI). The version is package.json's. Paths: binaries in /usr/bin, units in /lib/systemd/system,
// settings in /etc/vaultmesh/*.env (conffiles), agent state in /var/lib/vaultmesh/agent, center state in
// /var/lib/vaultmesh-cc, journals in /var/log/vaultmesh (docs/DEPLOY.md).
//
// Usage: node scripts/package-deb.mjs [--out dist/deb] [--sea <dir of built executables>] [--lintian] [--level 1..9]
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { buildSea } from './build-sea.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const PACKAGING = join(ROOT, 'packaging/deb');

/** What goes into each package: [path in the package, source (a file, or what to write or link), mode]. */
function layout(name, sea) {
  const doc = `usr/share/doc/${name}`;
  const common = [[`${doc}/copyright`, join(PACKAGING, 'copyright'), 0o644]];
  if (name === 'vaultmesh-agent') {
    return [
      ['usr/bin/vaultmesh-agent', join(sea, 'vaultmesh-agent'), 0o755],
      ['lib/systemd/system/vaultmesh-agent.service', join(ROOT, 'systemd/vaultmesh-agent.service'), 0o644],
      ['etc/vaultmesh/agent.env', join(ROOT, 'systemd/agent.env.example'), 0o640],
      ['usr/lib/sysusers.d/vaultmesh-agent.conf', { sysusers: 'vaultmesh-agent' }, 0o644],
      [`${doc}/examples/50-vaultmesh-agent.rules`, join(ROOT, 'systemd/50-vaultmesh-agent.rules'), 0o644],
      ...common,
    ];
  }
  return [
    ['usr/bin/vaultmesh-cc', join(sea, 'vaultmesh-cc'), 0o755],
    // The center's executable holds the CLI too and runs it under this name (scripts/build-sea.mjs).
    ['usr/bin/vaultmesh', { symlink: 'vaultmesh-cc' }, 0o777],
    ['lib/systemd/system/vaultmesh-cc.service', join(ROOT, 'systemd/vaultmesh-cc.service'), 0o644],
    ['etc/vaultmesh/cc.env', join(ROOT, 'systemd/vaultmesh-cc.env.example'), 0o640],
    ['usr/lib/sysusers.d/vaultmesh-cc.conf', { sysusers: 'vaultmesh-cc' }, 0o644],
    [`${doc}/examples/policy.json`, join(ROOT, 'systemd/policy.json'), 0o644],
    [`${doc}/examples/schedule.json`, join(ROOT, 'systemd/schedule.json'), 0o644],
    ...common,
  ];
}

/** systemd/vaultmesh.sysusers.conf cut down to one user (each package creates only its own). */
function sysusersFor(user) {
  const lines = readFileSync(join(ROOT, 'systemd/vaultmesh.sysusers.conf'), 'utf8').split('\n');
  const kept = lines.filter((l) => !/^u\s/.test(l) || l.split(/\s+/)[1] === user);
  return kept.join('\n').replace(/install as \S+/, `installed as /usr/lib/sysusers.d/${user}.conf`);
}

/** A Debian changelog for a native package, from this version's section of CHANGELOG.md. */
function debianChangelog(name) {
  const text = readFileSync(join(ROOT, 'CHANGELOG.md'), 'utf8');
  const m = new RegExp(`^## ${PKG.version.replace(/\./g, '\\.')}\\b[^\\n]*\\n([\\s\\S]*?)(?=^## |$(?![\\s\\S]))`, 'm').exec(text);
  if (!m) throw new Error(`CHANGELOG.md has no "## ${PKG.version}" section`);
  // Markdown list items (continued on indented lines) become Debian changelog bullets.
  const items = [];
  for (const line of m[1].split('\n')) {
    if (line.startsWith('- ')) items.push(line.slice(2).trim());
    else if (/^\s+\S/.test(line) && items.length) items[items.length - 1] += ` ${line.trim()}`;
  }
  if (!items.length) throw new Error(`CHANGELOG.md: the ${PKG.version} section lists no changes`);
  const wrapped = items.flatMap((item) => wrap(item.replace(/\*\*|`/g, ''), 78, '    ', '  * '));
  // A fixed date keeps the package reproducible; SOURCE_DATE_EPOCH overrides it.
  const date = new Date(Number(process.env.SOURCE_DATE_EPOCH ?? 0) * 1000 || Date.parse('2026-12-03T00:00:00Z')).toUTCString().replace('GMT', '+0000');
  return `${name} (${PKG.version}) unstable; urgency=medium\n\n${wrapped.join('\n')}\n\n -- VaultMesh maintainers <maintainers@vaultmesh.invalid>  ${date}\n`;
}

function wrap(text, width, indent, first) {
  const out = [];
  let cur = first;
  for (const word of text.split(/\s+/)) {
    if (cur.trim() && (cur + ' ' + word).length > width) {
      out.push(cur);
      cur = indent + word;
    } else cur = cur.endsWith(' ') ? cur + word : `${cur} ${word}`;
  }
  if (cur) out.push(cur);
  return out;
}

/** A manual page from the program's own --help (its reference), so the two cannot disagree. */
function manPage(bin) {
  const name = bin.split('/').pop();
  const help = execFileSync(bin, ['--help'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', NO_COLOR: '1' } });
  const escaped = help.replace(/\\/g, '\\e').replace(/^([.'])/gm, '\\&$1');
  const summary = { 'vaultmesh-agent': 'VaultMesh node agent', 'vaultmesh-cc': 'VaultMesh command center', vaultmesh: 'VaultMesh operator CLI' }[name];
  return `.TH ${name.toUpperCase()} 1 "" "${PKG.version}" "VaultMesh"\n.SH NAME\n${name} \\- ${summary}\n.SH SYNOPSIS\n.nf\n${escaped}.fi\n.SH SEE ALSO\n/usr/share/doc/${name === 'vaultmesh-agent' ? 'vaultmesh-agent' : 'vaultmesh-cc'}/, https://github.com/vaultmesh/command-center/tree/main/docs\n`;
}

function shlibsDepends(binaries) {
  // dpkg-shlibdeps wants a debian/control around it; the libraries Node links against (libc, libstdc++, libgcc).
  const tmp = join(ROOT, 'dist/deb/.shlibdeps');
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, 'debian'), { recursive: true });
  writeFileSync(join(tmp, 'debian/control'), 'Source: vaultmesh\n\nPackage: vaultmesh\nArchitecture: amd64\n');
  const r = spawnSync('dpkg-shlibdeps', ['-O', '-e', ...binaries], { cwd: tmp, encoding: 'utf8' });
  rmSync(tmp, { recursive: true, force: true });
  if (r.error || r.status !== 0) throw new Error(`dpkg-shlibdeps failed (apt-get install dpkg-dev): ${r.error?.message ?? r.stderr}`);
  const m = /^shlibs:Depends=(.*)$/m.exec(r.stdout);
  if (!m) throw new Error(`dpkg-shlibdeps: no shlibs:Depends in ${r.stdout}`);
  return m[1].trim();
}

function dirSizeKiB(dir) {
  let bytes = 0;
  const walk = (d) => readdirSync(d).forEach((n) => {
    const p = join(d, n);
    const s = lstatSync(p);
    if (s.isDirectory()) walk(p);
    else bytes += s.size;
  });
  walk(dir);
  return Math.ceil(bytes / 1024);
}

function buildOne(name, { out, sea, level }) {
  const stage = join(out, `${name}-root`);
  rmSync(stage, { recursive: true, force: true });
  const files = [];
  for (const [path, src, mode] of layout(name, sea)) {
    const dest = join(stage, path);
    mkdirSync(dirname(dest), { recursive: true, mode: 0o755 });
    if (typeof src === 'string') copyFileSync(src, dest);
    else if (src.symlink) {
      symlinkSync(src.symlink, dest);
      files.push(path);
      continue;
    } else writeFileSync(dest, sysusersFor(src.sysusers));
    chmodSync(dest, mode);
    files.push(path);
  }
  for (const bin of files.filter((f) => f.startsWith('usr/bin/'))) {
    const page = join(stage, `usr/share/man/man1/${bin.slice('usr/bin/'.length)}.1.gz`);
    mkdirSync(dirname(page), { recursive: true });
    writeFileSync(page, gzipSync(manPage(join(stage, bin)), { level: 9 }));
    chmodSync(page, 0o644);
    files.push(relative(stage, page));
  }
  const changelog = join(stage, `usr/share/doc/${name}/changelog.gz`);
  writeFileSync(changelog, gzipSync(debianChangelog(name), { level: 9 }));
  chmodSync(changelog, 0o644);
  files.push(relative(stage, changelog));

  const control = join(stage, 'DEBIAN');
  mkdirSync(control, { recursive: true });
  const isLink = (f) => lstatSync(join(stage, f)).isSymbolicLink();
  const binaries = files.filter((f) => f.startsWith('usr/bin/') && !isLink(f)).map((f) => join(stage, f));
  const fields = readFileSync(join(PACKAGING, name, 'control'), 'utf8')
    .replace('@VERSION@', PKG.version)
    .replace('@INSTALLED_SIZE@', String(dirSizeKiB(stage)))
    .replace('@SHLIBS@', shlibsDepends(binaries));
  writeFileSync(join(control, 'control'), fields);
  writeFileSync(join(control, 'conffiles'), files.filter((f) => f.startsWith('etc/')).map((f) => `/${f}\n`).join(''));
  writeFileSync(join(control, 'md5sums'), files.filter((f) => !f.startsWith('etc/') && !isLink(f)).sort().map((f) => `${createHash('md5').update(readFileSync(join(stage, f))).digest('hex')}  ${f}\n`).join(''));
  for (const f of ['control', 'conffiles', 'md5sums']) chmodSync(join(control, f), 0o644);
  for (const script of ['postinst', 'prerm', 'postrm']) {
    copyFileSync(join(PACKAGING, name, script), join(control, script));
    chmodSync(join(control, script), 0o755);
  }
  const overrides = join(PACKAGING, name, 'lintian-overrides');
  if (existsSync(overrides)) {
    const dest = join(stage, 'usr/share/lintian/overrides', name);
    mkdirSync(dirname(dest), { recursive: true });
    copyFileSync(overrides, dest);
    chmodSync(dest, 0o644);
    // md5sums covers every shipped file outside /etc.
    writeFileSync(join(control, 'md5sums'), readFileSync(join(control, 'md5sums'), 'utf8') + `${createHash('md5').update(readFileSync(dest)).digest('hex')}  usr/share/lintian/overrides/${name}\n`);
  }
  const deb = join(out, `${name}_${PKG.version}_amd64.deb`);
  rmSync(deb, { force: true });
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zxz', `-z${level}`, '--build', stage, deb], { stdio: ['ignore', 'ignore', 'inherit'] });
  rmSync(stage, { recursive: true, force: true });
  return deb;
}

// xz, the compression Debian's archive accepts (lintian rejects zstd). Level 1 packs an 85 MiB executable in ~15 s
// here, level 6 (the release) in ~90 s for 13% less.
export async function packageDeb({ out = join(ROOT, 'dist/deb'), sea = join(ROOT, 'dist/sea'), lintian = false, level = 1 } = {}) {
  if (!['vaultmesh-agent', 'vaultmesh-cc', 'vaultmesh'].every((b) => existsSync(join(sea, b)))) await buildSea({ out: sea });
  mkdirSync(out, { recursive: true });
  const debs = ['vaultmesh-agent', 'vaultmesh-cc'].map((name) => buildOne(name, { out, sea, level }));
  if (lintian) {
    for (const deb of debs) {
      const r = spawnSync('lintian', ['--fail-on', 'error,warning', '--display-info', deb], { encoding: 'utf8' });
      process.stdout.write(r.stdout + r.stderr);
      if (r.status !== 0) throw new Error(`lintian ${deb} failed`);
    }
  }
  return debs;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { out: { type: 'string' }, sea: { type: 'string' }, lintian: { type: 'boolean' }, level: { type: 'string' } } });
  // Without --sea, build the executables from the current dist/ first: never package stale ones.
  if (!values.sea) await buildSea();
  const debs = await packageDeb({ ...(values.out ? { out: resolve(values.out) } : {}), ...(values.sea ? { sea: resolve(values.sea) } : {}), lintian: Boolean(values.lintian), ...(values.level ? { level: Number(values.level) } : {}) });
  for (const d of debs) console.log(`${relative(ROOT, d)}  ${(statSync(d).size / 1048576).toFixed(1)} MiB`);
}
