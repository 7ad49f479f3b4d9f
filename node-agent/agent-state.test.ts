import { writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lockStateDir } from './agent-state.js';
import { tempDir } from '../test/helpers.js';

describe('lockStateDir', () => {
  it('refuses a second agent on the same state dir while the first lives, and releases on unlock', () => {
    const t = tempDir();
    try {
      const release = lockStateDir(t.dir);
      expect(() => lockStateDir(t.dir, process.pid + 1_000_000)).toThrow(/another vaultmesh-agent \(pid \d+\)/);
      release();
      expect(existsSync(join(t.dir, 'agent.lock'))).toBe(false);
      lockStateDir(t.dir, 42)();
    } finally {
      t.cleanup();
    }
  });

  it('takes over a lock left by a process that is gone', () => {
    const t = tempDir();
    try {
      writeFileSync(join(t.dir, 'agent.lock'), '999999999\n');
      const release = lockStateDir(t.dir);
      release();
    } finally {
      t.cleanup();
    }
  });
});
