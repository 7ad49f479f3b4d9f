import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkWorldWritable, findWorldWritable, type WalkLimits } from './world-writable.js';

let root: string;
const limits = (over: Partial<WalkLimits> = {}): WalkLimits => ({ maxEntries: 10_000, maxDepth: 16, maxFindings: 50, skip: [], sameFilesystem: true, ...over });

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'vm-ww-'));
  mkdirSync(join(root, 'etc', 'app'), { recursive: true });
  writeFileSync(join(root, 'etc', 'app', 'config.yml'), 'a: 1\n');
  writeFileSync(join(root, 'etc', 'app', 'secret.env'), 'X=1\n');
  chmodSync(join(root, 'etc', 'app', 'secret.env'), 0o777); // chmod after create: the umask does not apply
  mkdirSync(join(root, 'tmp'));
  chmodSync(join(root, 'tmp'), 0o1777); // sticky, like /tmp
  writeFileSync(join(root, 'tmp', 'scratch'), '');
  mkdirSync(join(root, 'drop'));
  chmodSync(join(root, 'drop'), 0o777); // world-writable without sticky bit
  symlinkSync('/etc/passwd', join(root, 'etc', 'link')); // symlinks are 0777 and must be ignored
  mkdirSync(join(root, 'skipme'));
  writeFileSync(join(root, 'skipme', 'open'), '');
  chmodSync(join(root, 'skipme', 'open'), 0o666);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('findWorldWritable', () => {
  it('finds world-writable files and non-sticky dirs, skipping sticky dirs, symlinks and skip paths', async () => {
    const walk = await findWorldWritable({ roots: [root], limits: limits({ skip: [join(root, 'skipme')] }) });
    expect(walk.hits.map((h) => [h.path.slice(root.length), h.type, h.mode.toString(8)]).sort()).toEqual([
      ['/drop', 'directory', '777'],
      ['/etc/app/secret.env', 'file', '777'],
    ]);
    expect(walk.truncated).toBe(false);
  });

  it('stops at maxEntries and maxDepth', async () => {
    const byEntries = await findWorldWritable({ roots: [root], limits: limits({ maxEntries: 3 }) });
    expect(byEntries.truncated).toBe(true);
    expect(byEntries.entries).toBe(3);
    const byDepth = await findWorldWritable({ roots: [root], limits: limits({ maxDepth: 1 }) });
    expect(byDepth.truncated).toBe(true);
    expect(byDepth.hits.map((h) => h.path)).not.toContain(join(root, 'etc', 'app', 'secret.env'));
  });

  it('honours an abort signal', async () => {
    await expect(findWorldWritable({ roots: [root], limits: limits(), signal: AbortSignal.abort() })).rejects.toThrow();
  });
});

describe('checkWorldWritable', () => {
  it('reports medium findings with path evidence, capped with a count', async () => {
    const findings = await checkWorldWritable({ roots: [root], limits: limits({ maxFindings: 1 }) });
    expect(findings).toHaveLength(2);
    expect(findings[0]).toMatchObject({ check: 'world-writable', severity: 'medium' });
    expect(String(findings[0]?.evidence.path)).toContain(root);
    expect(findings[1]).toMatchObject({ severity: 'medium', title: '2 more world-writable paths', evidence: { total: 3, listed: 1 } });
  });

  it('says when the walk was cut short', async () => {
    const findings = await checkWorldWritable({ roots: [root], limits: limits({ maxEntries: 2 }) });
    expect(findings.at(-1)).toMatchObject({ severity: 'info', title: 'walk limit reached' });
  });

  it('is info when no root exists', async () => {
    expect(await checkWorldWritable({ roots: [join(root, 'nope')], limits: limits() })).toEqual([
      expect.objectContaining({ severity: 'info', title: 'source unavailable' }),
    ]);
  });
});
