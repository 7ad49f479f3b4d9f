// The esbuild step shared by scripts/bundle-cli.mjs and scripts/bundle-center.mjs (run by scripts/postbuild.mjs after
// tsc): those say why each program is bundled.
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { build } from 'esbuild';

/**
 * zod's entry re-exports every locale (`z.locales`, `z.core.locales`: 64 modules, 366 KB of the 784 KB that zod
 * puts in `nodes list`), and a namespace re-export cannot be tree-shaken. The CLI speaks English and never calls
 * `z.config()`: in the bundle, `z.locales` holds `en` only, the locale zod registers by default (classic/schemas.js
 * imports en.js itself). The validation is zod's, unchanged. The center's messages are English too.
 */
export const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) => {
      if (!/[\\/]zod[\\/]v4[\\/](core|classic|mini)[\\/]/.test(args.importer)) return undefined;
      return { path: join(dirname(args.importer), '../locales/index.js'), namespace: 'zod-english-only' };
    });
    b.onLoad({ filter: /.*/, namespace: 'zod-english-only' }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(join(dirname(args.path), 'en.js'))};\n`,
      loader: 'js',
      resolveDir: dirname(args.path),
    }));
  },
};

// CommonJS dependencies call require(); an ES module has none of its own.
export const BANNER = "import { createRequire as __vaultmeshCreateRequire } from 'node:module'; const require = __vaultmeshCreateRequire(import.meta.url);";

/**
 * Turns tsc's `<dir>/main.js` into an esbuild bundle in place: one entry plus chunks under `<dir>/chunks/` for what
 * it imports on demand (code splitting), tsc's entry kept as `<dir>/main.unbundled.js` (the same program module by
 * module). Source maps chain through tsc's, so stack traces point at the .ts sources.
 */
export async function bundleEntry(dir) {
  const tscMain = join(dir, 'main.js');
  const unbundled = join(dir, 'main.unbundled.js');
  // tsc rewrites main.js on every build; run again without tsc, main.js is already the bundle (its banner says so)
  // and main.unbundled.js is tsc's.
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
    plugins: [zodEnglishOnly],
    // Fewer bytes for V8 to scan at start-up; names stay, so stack traces read without the source maps too.
    minifyWhitespace: true,
    minifySyntax: true,
  });
  // Chunk names carry their content's hash, so a rebuild writes new ones beside the old: drop those no longer used
  // (after the build, not before: a CLI started from the previous bundle can still load its chunks meanwhile).
  const used = new Set(Object.keys(result.metafile.outputs).map((f) => basename(f)));
  for (const f of existsSync(join(dir, 'chunks')) ? readdirSync(join(dir, 'chunks')) : []) {
    if (!used.has(f)) rmSync(join(dir, 'chunks', f), { force: true });
  }
  return result;
}
