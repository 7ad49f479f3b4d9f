import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { blockUsage, checkDiskUsage, inodeUsage, severityForPercent, type StatFsLike } from './disk-usage.js';

const dir = mkdtempSync(join(tmpdir(), 'vm-disk-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fake = (s: Partial<StatFsLike>): StatFsLike => ({ bsize: 4096, blocks: 1000, bfree: 500, bavail: 450, files: 100, ffree: 50, ...s });

describe('usage arithmetic', () => {
  it('follows df: reserved blocks are not available', () => {
    // used 500, available 450 → 500 / 950
    expect(blockUsage(fake({}))?.percent).toBeCloseTo(52.63, 2);
    expect(inodeUsage(fake({}))?.percent).toBe(50);
  });
  it('skips file systems without blocks or an inode table', () => {
    expect(blockUsage(fake({ blocks: 0, bfree: 0, bavail: 0 }))).toBeUndefined();
    expect(inodeUsage(fake({ files: 0, ffree: 0 }))).toBeUndefined();
  });
  it.each([
    [95, 'high'],
    [90, 'high'],
    [85, 'medium'],
    [80, 'medium'],
    [79.9, undefined],
  ])('%d%% → %s', (p, expected) => {
    expect(severityForPercent(p, { mediumPercent: 80, highPercent: 90 })).toBe(expected);
  });
});

describe('checkDiskUsage', () => {
  it('uses real statfs on a temp dir; 0% thresholds force block and inode findings', async () => {
    const findings = await checkDiskUsage({ mounts: [dir], thresholds: { mediumPercent: 0, highPercent: 0 } });
    const kinds = findings.map((f) => f.evidence.kind);
    expect(kinds).toContain('blocks');
    const blocks = findings.find((f) => f.evidence.kind === 'blocks')!;
    expect(blocks).toMatchObject({ check: 'disk-usage', severity: 'high', evidence: { mount: dir } });
    expect(blocks.evidence.total_bytes).toBeGreaterThan(0);
  });

  it('reports nothing under thresholds of 100%+', async () => {
    expect(await checkDiskUsage({ mounts: [dir], thresholds: { mediumPercent: 101, highPercent: 101 } })).toEqual([]);
  });

  it('grades medium between thresholds (injected statfs)', async () => {
    const findings = await checkDiskUsage({
      mounts: ['/data'],
      thresholds: { mediumPercent: 80, highPercent: 90 },
      statfs: async () => fake({ blocks: 1000, bfree: 150, bavail: 150, files: 100, ffree: 95 }),
    });
    expect(findings).toEqual([expect.objectContaining({ severity: 'medium', evidence: expect.objectContaining({ kind: 'blocks', used_percent: 85 }) })]);
  });

  it('turns a missing mount into info, not an error', async () => {
    const [f] = await checkDiskUsage({ mounts: [join(dir, 'nope')], thresholds: { mediumPercent: 80, highPercent: 90 } });
    expect(f).toMatchObject({ severity: 'info', title: 'source unavailable' });
  });
});
