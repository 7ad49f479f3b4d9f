/**
 * The package version, read once from package.json, so the three bins, `GET /healthz` and the agent's
 * `agent_version` never drift from what was released. package.json is an asset (lib/assets.ts): next to the
 * sources, above dist/, in a global npm install, or embedded in a single executable.
 */
import { PACKAGE_NAME, readAssetText } from './assets.js';

function readVersion(): string {
  const pkg = JSON.parse(readAssetText('package.json')) as { name?: string; version?: string };
  if (pkg.name !== PACKAGE_NAME || typeof pkg.version !== 'string') throw new Error(`${PACKAGE_NAME}: package.json has no version`);
  return pkg.version;
}

export const VERSION: string = readVersion();
