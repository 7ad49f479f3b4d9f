/**
 * Atomic file replacement off the event loop (writeFileAtomic) and the newest-wins writer built on it
 * (latest-file-writer.ts): whole versions only, even when the writing process is killed mid-write; newer content
 * supersedes waiting content; one write in flight; failures reach the callers whose content they carried.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileAtomic, writeFileAtomicSync } from './atomic-file.js';
import { createLatestFileWriter } from './latest-file-writer.js';
import { ROOT, assertBuilt } from '../test/process-helpers.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'vaultmesh-atomic-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A version that proves itself whole: `<n> <sha256 of the padding>\n<padding>`. */
const version = (n: number, bytes: number) => {
  const pad = String(n % 10).repeat(bytes);
  return `${n} ${createHash('sha256').update(pad).digest('hex')}\n${pad}`;
};
const parseVersion = (text: string): number => {
  const nl = text.indexOf('\n');
  const [n, digest] = text.slice(0, nl).split(' ');
  expect(createHash('sha256').update(text.slice(nl + 1)).digest('hex')).toBe(digest);
  return Number(n);
};

describe('writeFileAtomic', () => {
  it('writes the content with the mode, replaces an older file and leaves no temp file', async () => {
    const dir = mkdtempSync(join(tmp, 'w-'));
    const file = join(dir, 'sub', 'ROOT.txt');
    writeFileAtomicSync(file, 'old\n', 0o600);
    await writeFileAtomic(file, 'new\n', 0o640);
    expect(readFileSync(file, 'utf8')).toBe('new\n');
    expect(statSync(file).mode & 0o777).toBe(0o640);
    await writeFileAtomic(file, Buffer.from([1, 2, 3]), 0o640);
    expect([...readFileSync(file)]).toEqual([1, 2, 3]);
    expect(readdirSync(join(dir, 'sub'))).toEqual(['ROOT.txt']);
  });

  it('removes its temp file when the write fails and keeps the old file', async () => {
    const dir = mkdtempSync(join(tmp, 'f-'));
    const file = join(dir, 'x');
    writeFileSync(join(dir, 'x'), 'old');
    // A directory where the file should be: the rename fails after the temp file was written and synced.
    const target = join(dir, 'x-dir');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(target, 'busy'), { recursive: true });
    await expect(writeFileAtomic(target, 'new', 0o600)).rejects.toThrow();
    expect(readdirSync(dir).sort()).toEqual(['x', 'x-dir']);
    expect(readFileSync(file, 'utf8')).toBe('old');
  });

  it('a process killed while rewriting a file leaves one whole version, never a torn one', async () => {
    assertBuilt();
    const dir = mkdtempSync(join(tmp, 'k-'));
    const file = join(dir, 'PROOFCHAIN.json');
    const lib = pathToFileURL(join(ROOT, 'dist/lib/atomic-file.js')).href;
    // 256 KB versions back to back; the parent kills the writer at a different moment each time.
    const script = `
      import { writeFileAtomic } from ${JSON.stringify(lib)};
      import { createHash } from 'node:crypto';
      const version = (n, bytes) => {
        const pad = String(n % 10).repeat(bytes);
        return n + ' ' + createHash('sha256').update(pad).digest('hex') + '\\n' + pad;
      };
      let n = Number(process.argv[1]);
      process.stdout.write('ready\\n');
      for (;;) await writeFileAtomic(${JSON.stringify(file)}, version(++n, 256 * 1024), 0o640);
    `;
    let last = 0;
    for (let round = 0; round < 6; round++) {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script, String(last)], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve, reject) => {
        child.stdout.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`writer exited with ${code}`)));
      });
      await new Promise((r) => setTimeout(r, 40 + round * 37));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const n = parseVersion(readFileSync(file, 'utf8'));
      expect(n).toBeGreaterThanOrEqual(last);
      last = n;
    }
    expect(last).toBeGreaterThan(0);
  }, 30_000);
});

describe('createLatestFileWriter', () => {
  /** A write the test releases by hand, recording what was written. */
  const gatedWrites = () => {
    const calls: Array<{ data: string; release: (err?: Error) => void }> = [];
    const write = (_path: string, data: string | Uint8Array) =>
      new Promise<void>((resolve, reject) => {
        calls.push({ data: String(data), release: (err) => (err ? reject(err) : resolve()) });
      });
    return { calls, write };
  };
  const tick = () => new Promise((r) => setImmediate(r));

  it('writes one version at a time; newer content replaces waiting content, whose callers wait for it', async () => {
    const g = gatedWrites();
    const w = createLatestFileWriter('/x', 0o644, g.write);
    const settled: string[] = [];
    const a = w.write('a').then(() => settled.push('a'));
    const b = w.write('b').then(() => settled.push('b'));
    const c = w.write('c').then(() => settled.push('c'));
    await tick();
    expect(g.calls.map((x) => x.data)).toEqual(['a']); // one in flight
    expect(w.busy).toBe(true);
    g.calls[0]!.release();
    await a;
    await tick();
    expect(g.calls.map((x) => x.data)).toEqual(['a', 'c']); // b was superseded by c before it started
    expect(settled).toEqual(['a']);
    g.calls[1]!.release();
    await Promise.all([b, c]);
    expect(settled).toEqual(['a', 'b', 'c']);
    await tick();
    expect(w.busy).toBe(false);
  });

  it('a failed write rejects the callers it carried; the next content is still written; flush reports', async () => {
    const g = gatedWrites();
    const w = createLatestFileWriter('/x', 0o644, g.write);
    const a = w.write('a');
    const b = w.write('b');
    await tick();
    g.calls[0]!.release(new Error('ENOSPC'));
    await expect(a).rejects.toThrow('ENOSPC');
    await tick();
    expect(g.calls.map((x) => x.data)).toEqual(['a', 'b']);
    const flushed = w.flush();
    g.calls[1]!.release(new Error('EIO'));
    await expect(b).rejects.toThrow('EIO');
    await expect(flushed).rejects.toThrow('EIO');
    const c = w.write('c');
    await tick();
    g.calls[2]!.release();
    await c;
    expect(g.calls.map((x) => x.data)).toEqual(['a', 'b', 'c']);
  });

  it('flush waits for waiting content, and the file then holds the newest version', async () => {
    const dir = mkdtempSync(join(tmp, 'l-'));
    const w = createLatestFileWriter(join(dir, 'checkpoint'), 0o644);
    for (let i = 0; i < 20; i++) void w.write(`v${i}\n`);
    await w.flush();
    expect(readFileSync(join(dir, 'checkpoint'), 'utf8')).toBe('v19\n');
    expect(readdirSync(dir)).toEqual(['checkpoint']);
    await w.flush(); // idle: resolves at once
  });
});
