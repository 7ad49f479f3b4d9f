// Bundles the `vaultmesh` CLI after tsc (run by scripts/postbuild.mjs). Loaded module by module, `vaultmesh nodes
// list` read ≈ 112 files (95 of them zod's, 64 locales) and Node's ESM loader's per-file work (resolve, read,
// compile, link) was most of its start-up (docs/BENCHMARKS.md, "cli"). esbuild turns dist/cli/main.js into one
// entry plus shared chunks under dist/cli/chunks/, with code splitting, so each command's action module is still
// imported only when that command runs (cli/command-table.ts), but as a handful of files.
//
// tsc's own output stays: dist/cli/main.js becomes dist/cli/main.unbundled.js (the same program, module by
// module: what bench/cli.mjs's eager baseline runs) and dist/cli/commands/*.js are left as they are. Source maps
// chain through tsc's, so stack traces point at the .ts sources.
import { join } from 'node:path';
import { bundleEntry } from './bundle-entry.mjs';

export const bundleCli = (root = process.cwd()) => bundleEntry(join(root, 'dist/cli'));
