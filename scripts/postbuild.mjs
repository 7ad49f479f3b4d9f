// After a build: make the three entry points executable, and link them into node_modules/.bin so that
// `npx vaultmesh`, `npx vaultmesh-cc` and `npx vaultmesh-agent` work in the repo root (npm links the bins of
// dependencies there, never the package's own).
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { bundleCli } from './bundle-cli.mjs';
import { bundleCenter } from './bundle-center.mjs';

// The CLI and the center are bundled first: `bin` points at the bundles' entries (scripts/bundle-cli.mjs,
// scripts/bundle-center.mjs).
await bundleCli();
await bundleCenter();

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const binDir = join('node_modules', '.bin');
for (const [name, target] of Object.entries(pkg.bin)) {
  if (!existsSync(target)) continue;
  chmodSync(target, 0o755);
  if (!existsSync('node_modules')) continue;
  mkdirSync(binDir, { recursive: true });
  const link = join(binDir, name);
  rmSync(link, { force: true });
  symlinkSync(relative(binDir, target), link);
}

// Written last: its mtime is when dist/ was completely built (test/process-helpers.ts rebuilds only when a source
// is newer, so a test run started by `npm test`, which builds first, never rewrites dist/ under running processes).
writeFileSync(join('dist', '.build-stamp'), `${new Date().toISOString()}\n`);
