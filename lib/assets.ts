/**
 * "Give me asset X" for every way the programs ship: a git checkout (sources under vitest, or dist/), a global npm
 * install, and a single executable (Node SEA) with no files next to it. Assets are named by their path in the
 * package (`views/console.eta`, `systemd/policy.json`, `package.json`) or, for files of a runtime dependency, by its
 * module path (`htmx.org/dist/htmx.min.js`). On disk they are found relative to the package root that holds this
 * module, never the cwd; in a SEA they are the blobs scripts/build-sea.mjs embedded under the same names.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as sea from 'node:sea';

export const PACKAGE_NAME = 'vaultmesh-command-center';

/** Runtime dependencies whose files are assets (resolved through the package's own node_modules on disk). */
const DEPENDENCY_ASSETS = ['htmx.org/'];

export interface AssetSource {
  /** Where the assets come from, for messages: a directory, or `single executable`. */
  readonly origin: string;
  read(name: string): Buffer;
}

export class AssetNotFoundError extends Error {
  constructor(name: string, origin: string) {
    super(`${PACKAGE_NAME}: asset ${name} not found in ${origin}`);
    this.name = 'AssetNotFoundError';
  }
}

function checkName(name: string): void {
  // Names are package paths: relative, forward slashes, no way out of the package.
  if (!/^[A-Za-z0-9@._-]+(?:\/[A-Za-z0-9@._-]+)*$/.test(name) || name.split('/').some((p) => p === '..' || p === '.')) {
    throw new Error(`bad asset name ${JSON.stringify(name)}`);
  }
}

/** The directory holding our package.json, walking up from `fromDir` (lib/ in a checkout, dist/lib/ once built). */
export function findPackageRoot(fromDir: string): string {
  let dir = resolve(fromDir);
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === PACKAGE_NAME) return dir;
      } catch {
        // an unrelated, unreadable package.json: keep walking
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`${PACKAGE_NAME}: package.json not found above ${fromDir}`);
    dir = up;
  }
}

/** Assets read from an installed package or a checkout rooted at `root`. */
export function directoryAssets(root: string): AssetSource {
  const require = createRequire(join(root, 'package.json'));
  return {
    origin: root,
    read(name) {
      checkName(name);
      let path: string;
      if (DEPENDENCY_ASSETS.some((d) => name.startsWith(d))) {
        try {
          path = require.resolve(name);
        } catch {
          throw new AssetNotFoundError(name, root);
        }
      } else {
        path = join(root, ...name.split('/'));
        if (!path.startsWith(root + sep)) throw new AssetNotFoundError(name, root);
      }
      try {
        return readFileSync(path);
      } catch {
        throw new AssetNotFoundError(name, root);
      }
    },
  };
}

/** Assets embedded in this single executable. */
export function seaAssets(): AssetSource {
  return {
    origin: 'single executable',
    read(name) {
      checkName(name);
      try {
        return Buffer.from(sea.getAsset(name));
      } catch {
        throw new AssetNotFoundError(name, 'single executable');
      }
    },
  };
}

let current: AssetSource | undefined;

/** The assets of this running program. */
export function packageAssets(): AssetSource {
  if (!current) current = sea.isSea() ? seaAssets() : directoryAssets(findPackageRoot(dirname(fileURLToPath(import.meta.url))));
  return current;
}

export function readAsset(name: string): Buffer {
  return packageAssets().read(name);
}

export function readAssetText(name: string): string {
  return readAsset(name).toString('utf8');
}
