#!/usr/bin/env node
// Single executables (Node SEA) of the three programs, for linux-x64: dist/sea/vaultmesh-agent, vaultmesh-cc,
// vaultmesh. Each is this Node binary with one CommonJS bundle of the program (esbuild, from the tsc output in
// dist/) and the package assets (views, htmx, CSS, shipped policy/schedule, package.json; see lib/assets.ts)
// injected with postject. They run with no Node and no node_modules on the host. vaultmesh-cc also holds the CLI
// and runs it when called as `vaultmesh` (a symlink: the vaultmesh-cc package ships one 85 MiB runtime, not two).
//
// Usage: node scripts/build-sea.mjs [--out dist/sea] [--node /path/to/node] [--only vaultmesh-agent]
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { build } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(ROOT, 'package.json'));
// postject looks for this string in the Node binary to flip the fuse that makes it run the injected blob.
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

export const PROGRAMS = {
  'vaultmesh-agent': 'dist/node-agent/main.js',
  'vaultmesh-cc': 'dist/command-center/main.js',
  vaultmesh: 'dist/cli/main.js',
};

/**
 * vaultmesh-cc's entry: the CLI when its name is `vaultmesh` (the symlink in the package, or the release file
 * name `vaultmesh-<version>-linux-x64`), the center otherwise. Each main runs on import, so only one is required.
 */
const CC_ENTRY = () => `const name = require('node:path').basename(process.argv0 || '');
if (/^vaultmesh(?:-\\d[^/]*)?$/.test(name)) require('./${bundleSource(PROGRAMS.vaultmesh)}');
else require('./${bundleSource(PROGRAMS['vaultmesh-cc'])}');
`;

/**
 * What esbuild bundles for a program: its entry, except the CLI's and the center's, which npm's build already
 * bundled as ESM chunks (scripts/bundle-cli.mjs, scripts/bundle-center.mjs): from tsc's entries kept beside them,
 * the CLI shares vaultmesh-cc's modules (one zod) and the single executable holds one CommonJS bundle without the
 * chunks' split.
 */
function bundleSource(entry) {
  const unbundled = entry.replace(/main\.js$/, 'main.unbundled.js');
  return (entry === PROGRAMS.vaultmesh || entry === PROGRAMS['vaultmesh-cc']) && existsSync(join(ROOT, unbundled)) ? unbundled : entry;
}

/** Every asset lib/assets.ts may be asked for, by name → file. */
export function assetFiles() {
  const files = {
    'package.json': join(ROOT, 'package.json'),
    'systemd/policy.json': join(ROOT, 'systemd/policy.json'),
    'systemd/schedule.json': join(ROOT, 'systemd/schedule.json'),
    'htmx.org/dist/htmx.min.js': require.resolve('htmx.org/dist/htmx.min.js'),
    'htmx.org/dist/ext/hx-sse.js': require.resolve('htmx.org/dist/ext/hx-sse.js'),
  };
  const walk = (dir) =>
    readdirSync(dir).forEach((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else files[relative(ROOT, path).split('\\').join('/')] = path;
    });
  walk(join(ROOT, 'views'));
  return files;
}

async function bundle(entry, outfile) {
  const r = await build({
    ...(entry === PROGRAMS['vaultmesh-cc'] ? { stdin: { contents: CC_ENTRY(), resolveDir: ROOT, sourcefile: 'vaultmesh-cc-entry.cjs', loader: 'js' } } : { entryPoints: [join(ROOT, bundleSource(entry))] }),
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // The sources are ESM and use import.meta.url; a CJS bundle has __filename instead.
    define: { 'import.meta.url': '__vaultmeshModuleUrl' },
    banner: { js: "const __vaultmeshModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
    legalComments: 'none',
    logLevel: 'warning',
    metafile: true,
  });
  // The entry's `#!/usr/bin/env node` would land after the banner, where it is a syntax error.
  writeFileSync(outfile, readFileSync(outfile, 'utf8').replace(/^(const __vaultmeshModuleUrl[^\n]*\n)#![^\n]*\n/, '$1'));
  return r;
}

export async function buildSea({ out = join(ROOT, 'dist/sea'), node = process.execPath, only } = {}) {
  for (const entry of Object.values(PROGRAMS)) {
    if (!existsSync(join(ROOT, entry))) throw new Error(`${entry} is missing: run npm run build first`);
  }
  mkdirSync(out, { recursive: true });
  const assets = assetFiles();
  const built = [];
  for (const [name, entry] of Object.entries(PROGRAMS)) {
    if (only && name !== only) continue;
    const js = join(out, `${name}.cjs`);
    const blob = join(out, `${name}.blob`);
    const config = join(out, `${name}.sea-config.json`);
    const bin = join(out, name);
    await bundle(entry, js);
    writeFileSync(config, JSON.stringify({ main: js, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true, assets }, null, 2));
    execFileSync(node, ['--experimental-sea-config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
    rmSync(bin, { force: true });
    copyFileSync(node, bin);
    chmodSync(bin, 0o755);
    // Debug symbols are most of an unstripped Node; the SEA blob goes in after, so stripping cannot touch it.
    try {
      execFileSync('strip', ['--strip-all', bin], { stdio: 'ignore' });
    } catch {
      console.warn(`build-sea: strip not available, ${name} keeps its symbols`);
    }
    execFileSync(process.execPath, [join(dirname(require.resolve('postject/package.json')), 'dist/cli.js'), bin, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], { stdio: ['ignore', 'ignore', 'inherit'] });
    rmSync(blob);
    rmSync(config);
    built.push({ name, path: bin, bytes: statSync(bin).size, bundle: js, bundleBytes: statSync(js).size });
  }
  return built;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { out: { type: 'string' }, node: { type: 'string' }, only: { type: 'string' } } });
  const built = await buildSea({ ...(values.out ? { out: resolve(values.out) } : {}), ...(values.node ? { node: resolve(values.node) } : {}), ...(values.only ? { only: values.only } : {}) });
  for (const b of built) console.log(`${relative(ROOT, b.path)}  ${(b.bytes / 1048576).toFixed(1)} MiB (bundle ${(b.bundleBytes / 1024).toFixed(0)} KiB)`);
}
