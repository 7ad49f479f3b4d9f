import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lockStateDir } from './agent-state.js';
import { tempDir } from '../test/helpers.js';

describe('lockStateDir', () => {
  it('refuses a second agent on the same state dir while the first lives, and releases on unlock', () => {
    const t = tempDir();
    try {
      const release = lockStateDir(t.dir);
      expect(() => lockStateDir(t.dir, process.pid + 1_000_000)).toThrow(new RegExp(`another vaultmesh-agent \\(pid ${process.pid}\\)`));
      release();
      lockStateDir(t.dir, 42)();
    } finally {
      t.cleanup();
    }
  });

  it('is not fooled by a lock file left behind: a dead pid, or a pid a live process reused (after a reboot)', () => {
    const t = tempDir();
    try {
      writeFileSync(join(t.dir, 'agent.lock'), '999999999\n');
      lockStateDir(t.dir)();
      // pid 1 is always alive, as a reused pid would be: only a process holding the lock blocks.
      writeFileSync(join(t.dir, 'agent.lock'), '1\n');
      lockStateDir(t.dir, 4242)();
    } finally {
      t.cleanup();
    }
  });
});
