#!/usr/bin/env node
// `npm run release`: every artifact of this version in dist/release/, with SHA256SUMS (check with
// `sha256sum -c SHA256SUMS`) and the version's notes from CHANGELOG.md. Expects a fresh `npm run build` (the npm
// script runs it first). The version is package.json's; the release stops if a program reports another one or
// CHANGELOG.md has no section for it.
//
//   vaultmesh-command-center-<v>.tgz        npm tarball (npm install -g ./…)
//   vaultmesh-agent-<v>-linux-x64            single executables
//   vaultmesh-cc-<v>-linux-x64
//   vaultmesh-<v>-linux-x64
//   vaultmesh-agent_<v>_amd64.deb            Debian packages
//   vaultmesh-cc_<v>_amd64.deb
//   RELEASE-NOTES.md, SHA256SUMS
//
// Usage: node scripts/release.mjs [--out dist/release]
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { buildSea, PROGRAMS } from './build-sea.mjs';
import { packageDeb } from './package-deb.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

export function releaseNotes(version = PKG.version) {
  const text = readFileSync(join(ROOT, 'CHANGELOG.md'), 'utf8');
  const start = text.search(new RegExp(`^## ${version.replace(/\./g, '\\.')}\\b`, 'm'));
  if (start < 0) throw new Error(`CHANGELOG.md has no "## ${version}" section: write this version's notes first`);
  const next = text.slice(start + 3).search(/^## /m);
  return text.slice(start, next < 0 ? undefined : start + 3 + next).trim() + '\n';
}

export async function release({ out = join(ROOT, 'dist/release') } = {}) {
  const notes = releaseNotes();
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });

  const sea = join(ROOT, 'dist/sea');
  await buildSea({ out: sea });
  for (const name of Object.keys(PROGRAMS)) {
    const reported = execFileSync(join(sea, name), ['--version'], { encoding: 'utf8', env: {} }).split(/\s/)[0];
    if (reported !== `${name}/${PKG.version}`) throw new Error(`${name} --version says ${reported}, package.json says ${PKG.version}`);
    copyFileSync(join(sea, name), join(out, `${name}-${PKG.version}-linux-x64`));
  }
  for (const deb of await packageDeb({ sea, out: join(ROOT, 'dist/deb'), level: 6 })) copyFileSync(deb, join(out, basename(deb)));
  // dist/ is fresh from `npm run build`; prepack would only build it again.
  execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', out], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  writeFileSync(join(out, 'RELEASE-NOTES.md'), notes);

  const names = readdirSync(out).filter((n) => n !== 'SHA256SUMS').sort();
  const sums = names.map((n) => `${createHash('sha256').update(readFileSync(join(out, n))).digest('hex')}  ${n}\n`).join('');
  writeFileSync(join(out, 'SHA256SUMS'), sums);
  return names.map((n) => ({ name: n, bytes: statSync(join(out, n)).size }));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { out: { type: 'string' } } });
  const out = values.out ? resolve(values.out) : join(ROOT, 'dist/release');
  for (const a of await release({ out })) console.log(`${relative(ROOT, join(out, a.name))}  ${(a.bytes / 1048576).toFixed(1)} MiB`);
  console.log(`${relative(ROOT, join(out, 'SHA256SUMS'))}`);
}
