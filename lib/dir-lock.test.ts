import { readFileSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isHeld, tryLockDir, type DirLock } from './dir-lock.js';
import { tempDir } from '../test/helpers.js';

describe('tryLockDir', () => {
  it('refuses a second holder naming the first one’s pid, and is free again once released', () => {
    const t = tempDir();
    try {
      const first = tryLockDir(t.dir, { pid: 4242 }) as DirLock;
      expect(isHeld(first)).toBe(false);
      expect(readFileSync(first.file, 'utf8')).toBe('4242\n');
      expect(statSync(first.file).mode & 0o777).toBe(0o600);
      // flock(2) locks an open file description: a second open of the same file conflicts even in one process.
      const second = tryLockDir(t.dir, { pid: 5151 });
      expect(isHeld(second) && second.heldBy).toBe(4242);
      expect(readFileSync(first.file, 'utf8')).toBe('4242\n');
      first.release();
      first.release();
      const third = tryLockDir(t.dir, { pid: 6161 });
      expect(isHeld(third)).toBe(false);
      expect(readFileSync(third.file, 'utf8')).toBe('6161\n');
      (third as DirLock).release();
    } finally {
      t.cleanup();
    }
  });

  it('keeps separate names in one directory apart', () => {
    const t = tempDir();
    try {
      const a = tryLockDir(t.dir, { name: 'a.lock' }) as DirLock;
      const b = tryLockDir(t.dir, { name: 'b.lock' });
      expect(isHeld(b)).toBe(false);
      a.release();
      (b as DirLock).release();
    } finally {
      t.cleanup();
    }
  });

  it('fails clearly when flock(1) is not installed', () => {
    const t = tempDir();
    try {
      expect(() => tryLockDir(t.dir, { flockBin: '/nonexistent/flock' })).toThrow(/flock program \(util-linux\) is not installed/);
    } finally {
      t.cleanup();
    }
  });
});
