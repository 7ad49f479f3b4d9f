// Bundles `vaultmesh-cc` after tsc (run by scripts/postbuild.mjs), as scripts/bundle-cli.mjs does the CLI. Loaded
// module by module, the center imported ≈ 350 files before it could read its state snapshot, and Node's ESM
// loader's per-file work (resolve, read, compile, link) was ≈ 0.4 s of CPU of a start from the snapshot, the
// largest fixed cost of a restart (docs/BENCHMARKS.md, "startup"). esbuild turns dist/command-center/main.js into
// one entry plus chunks under dist/command-center/chunks/ for what it imports only on demand (the PostgreSQL
// store, jose for Cloudflare Access), so a JSONL center still never loads those.
//
// tsc's own output stays: dist/command-center/main.js becomes main.unbundled.js (the same program, module by
// module: a baseline, and what the single executable bundles itself, scripts/build-sea.mjs). Source maps chain
// through tsc's, so stack traces map to the .ts sources.
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { build } from 'esbuild';
import { BANNER, zodEnglishOnly } from './bundle-cli.mjs';

export async function bundleCenter(root = process.cwd()) {
  const dir = join(root, 'dist/command-center');
  const tscMain = join(dir, 'main.js');
  const unbundled = join(dir, 'main.unbundled.js');
  // tsc rewrites main.js on every build; run again without tsc, main.js is already the bundle (its banner says so).
  const isBundle = (file) => readFileSync(file, 'utf8').includes(BANNER);
  if (existsSync(tscMain) && !isBundle(tscMain)) {
    renameSync(tscMain, unbundled);
    if (existsSync(`${tscMain}.map`)) renameSync(`${tscMain}.map`, `${unbundled}.map`);
    writeFileSync(unbundled, readFileSync(unbundled, 'utf8').replace(/\/\/# sourceMappingURL=main\.js\.map\s*$/, '//# sourceMappingURL=main.unbundled.js.map\n'));
  }
  if (!existsSync(unbundled)) return undefined;
  const result = await build({
    entryPoints: { main: unbundled },
    outdir: dir,
    entryNames: '[name]',
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: true,
    banner: { js: BANNER },
    legalComments: 'none',
    logLevel: 'warning',
    metafile: true,
    // The center's messages are English; zod's other locales are never registered (see bundle-cli.mjs).
    plugins: [zodEnglishOnly],
    minifyWhitespace: true,
    minifySyntax: true,
  });
  const used = new Set(Object.keys(result.metafile.outputs).map((f) => basename(f)));
  for (const f of existsSync(join(dir, 'chunks')) ? readdirSync(join(dir, 'chunks')) : []) {
    if (!used.has(f)) rmSync(join(dir, 'chunks', f), { force: true });
  }
  return result;
}
