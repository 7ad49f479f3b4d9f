import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, assertBuilt } from '../test/process-helpers.js';
import { AssetNotFoundError, directoryAssets, findPackageRoot, packageAssets, readAssetText } from './assets.js';

const run = promisify(execFile);
const elsewhere = mkdtempSync(join(tmpdir(), 'vm-assets-'));
afterAll(() => rmSync(elsewhere, { recursive: true, force: true }));

describe('package assets', () => {
  it('come from the package root above this module, whatever the cwd', () => {
    expect(packageAssets().origin).toBe(ROOT);
    expect(findPackageRoot(join(ROOT, 'dist/lib'))).toBe(ROOT);
    expect(() => findPackageRoot(elsewhere)).toThrow(/package.json not found/);
  });

  it('names views, shipped settings, package.json and htmx from the package dependencies', () => {
    expect(readAssetText('views/console.eta')).toContain('<');
    expect(readAssetText('views/partials/node-row.eta').length).toBeGreaterThan(0);
    expect(JSON.parse(readAssetText('systemd/policy.json'))).toHaveProperty('profiles');
    expect(JSON.parse(readAssetText('package.json')).name).toBe('vaultmesh-command-center');
    expect(readAssetText('htmx.org/dist/htmx.min.js')).toMatch(/htmx/);
  });

  it('refuses names that leave the package, and says which asset is missing', () => {
    const assets = directoryAssets(ROOT);
    for (const bad of ['../package.json', 'views/../../x', '/etc/passwd', 'views//x', '']) expect(() => assets.read(bad), bad).toThrow(/bad asset name/);
    expect(() => assets.read('views/nope.eta')).toThrow(AssetNotFoundError);
    expect(() => assets.read('htmx.org/dist/nope.js')).toThrow(/asset htmx.org\/dist\/nope.js not found/);
  });

  it('the built center renders the console from another directory', async () => {
    assertBuilt();
    // dist/ the way a global npm install runs it: cwd far from the package, no views/ in sight.
    const script = `import { createConsoleRenderer } from ${JSON.stringify(join(ROOT, 'dist/command-center/console/render.js'))};
      const r = createConsoleRenderer();
      process.stdout.write(JSON.stringify({ login: r.login({ error: '', next: '/console', sessionsEnabled: true }).length, css: r.asset('console.css').length }));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: elsewhere, timeout: 20_000 });
    const out = JSON.parse(stdout) as { login: number; css: number };
    expect(out.login).toBeGreaterThan(100);
    expect(out.css).toBeGreaterThan(100);
  });
});
