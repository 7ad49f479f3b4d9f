/**
 * What `npm pack` ships, without building it (`--ignore-scripts`; the tarball itself is built and installed by
 * `npm run test:package`): runtime files only, and everything the programs and an operator need from it.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT, assertBuilt } from './process-helpers.js';

const run = promisify(execFile);
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string>; dependencies: Record<string, string>; scripts: Record<string, string> };

async function packedFiles(): Promise<string[]> {
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, timeout: 60_000 });
  return (JSON.parse(stdout) as [{ files: { path: string }[] }])[0].files.map((f) => f.path).sort();
}

describe('npm package contents', () => {
  it('runtime files only: built JS, views, systemd files, docs', async () => {
    assertBuilt();
    const files = await packedFiles();
    const runtime = /^(?:dist\/(?:lib|protocol|command-center|node-agent|cli)\/.+\.js(?:\.map)?|views\/.+\.(?:eta|css|js)|systemd\/[^/]+\.(?:service|conf|example|rules|json)|docs\/[^/]+\.(?:md|png)|package\.json|README\.md|CHANGELOG\.md)$/;
    expect(files.filter((f) => !runtime.test(f))).toEqual([]);
    expect(files.filter((f) => /\.test\.|\.ts$|^dist\/(?:sea|deb|release)\//.test(f))).toEqual([]);
    for (const need of [...Object.values(pkg.bin), 'dist/lib/assets.js', 'views/console.eta', 'views/assets/console.css', 'views/partials/node-row.eta', 'systemd/vaultmesh-cc.service', 'systemd/vaultmesh-agent.service', 'systemd/agent.env.example', 'systemd/policy.json', 'systemd/schedule.json', 'docs/DEPLOY.md', 'CHANGELOG.md']) {
      expect(files, need).toContain(need);
    }
  }, 90_000);

  it('is built before packing, and installs only runtime dependencies', () => {
    expect(pkg.scripts.prepack).toMatch(/npm run build/);
    // The console's htmx is served from the package: a runtime dependency, not a devDependency.
    expect(Object.keys(pkg.dependencies)).toContain('htmx.org');
    for (const dev of ['typescript', 'vitest', 'esbuild', 'postject']) expect(Object.keys(pkg.dependencies)).not.toContain(dev);
  });

  it('CHANGELOG.md has notes for this version', () => {
    const changelog = readFileSync(join(ROOT, 'CHANGELOG.md'), 'utf8');
    expect(changelog).toMatch(new RegExp(`^## ${pkg.version.replace(/\./g, '\\.')}\\b`, 'm'));
  });
});
