/**
 * The package version, read once from package.json, so the three bins, `GET /healthz` and the agent's
 * `agent_version` never drift from what was released. The same file sits one level above `lib/` in a checkout
 * (tests run the sources) and two above `dist/lib/` once built.
 */
import { readFileSync } from 'node:fs';

const PACKAGE_NAME = 'vaultmesh-command-center';

function readVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    let text: string;
    try {
      text = readFileSync(new URL(rel, import.meta.url), 'utf8');
    } catch {
      continue;
    }
    const pkg = JSON.parse(text) as { name?: string; version?: string };
    if (pkg.name === PACKAGE_NAME && typeof pkg.version === 'string') return pkg.version;
  }
  throw new Error(`${PACKAGE_NAME}: package.json not found above ${new URL('.', import.meta.url).pathname}`);
}

export const VERSION: string = readVersion();
