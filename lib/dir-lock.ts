/**
 * One process per directory, with flock(2) semantics: the lock belongs to an open file description of
 * `<dir>/<name>`, so the kernel drops it when the holder exits, however it exits (kill -9 included); there is no
 * stale lock to detect or take over, and no pid that a new process may have reused.
 *
 * Node has no flock binding, so util-linux `flock(1)` takes it for us: the lock file is opened here and handed to
 * the child as its fd 3; `flock --nonblock --exclusive 3` locks that open file description and exits. The lock
 * outlives the child because this process still holds the description, and lasts until `release()` closes it (or
 * the process dies). The holder writes its pid into the file so that a refused process can name it.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, constants, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { VaultMeshError } from '../protocol/errors.js';

export interface DirLock {
  readonly file: string;
  /** Closes the lock file, which releases the lock. Idempotent. */
  release(): void;
}

/** The directory is locked by another process; `pid` is what it wrote into the lock file, if readable yet. */
export interface DirLockHeld {
  readonly file: string;
  readonly heldBy: number | undefined;
}

export interface DirLockOptions {
  /** File name inside the directory (default `.lock`). */
  name?: string;
  /** Written into the lock file once it is ours. */
  pid?: number;
  /** The flock(1) program (default `flock`, found on PATH). */
  flockBin?: string;
}

/**
 * Locks `dir` (which must exist) without waiting. Returns the lock, or who holds it. Throws VaultMeshError
 * CONFIG_INVALID when flock(1) is not installed, since without it no lock can be taken.
 */
export function tryLockDir(dir: string, opts: DirLockOptions = {}): DirLock | DirLockHeld {
  const file = join(dir, opts.name ?? '.lock');
  const flockBin = opts.flockBin ?? 'flock';
  // O_NOFOLLOW: a symlink planted in the directory must not make us truncate another file.
  const fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  let ours = false;
  try {
    const run = spawnSync(flockBin, ['--nonblock', '--exclusive', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd], encoding: 'utf8' });
    if (run.error) {
      const missing = (run.error as NodeJS.ErrnoException).code === 'ENOENT';
      throw new VaultMeshError(
        'CONFIG_INVALID',
        missing
          ? `cannot lock ${dir}: the flock program (util-linux) is not installed; install util-linux (apt-get install util-linux)`
          : `cannot lock ${dir}: running ${flockBin} failed: ${run.error.message}`,
      );
    }
    if (run.status === 1) return { file, heldBy: readPid(file) };
    if (run.status !== 0) throw new VaultMeshError('CONFIG_INVALID', `cannot lock ${dir}: ${flockBin} exited with ${run.status ?? run.signal}: ${run.stderr.trim()}`);
    ftruncateSync(fd, 0);
    writeSync(fd, `${opts.pid ?? process.pid}\n`, 0);
    ours = true;
  } finally {
    if (!ours) closeSync(fd);
  }
  let open = true;
  return {
    file,
    release() {
      if (!open) return;
      open = false;
      closeSync(fd);
    },
  };
}

export function isHeld(result: DirLock | DirLockHeld): result is DirLockHeld {
  return 'heldBy' in result;
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
