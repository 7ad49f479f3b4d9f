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
import { join } from 'node:path';
import { bundleEntry } from './bundle-entry.mjs';

export const bundleCenter = (root = process.cwd()) => bundleEntry(join(root, 'dist/command-center'));
