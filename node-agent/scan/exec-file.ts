/**
 * Running a host program for a scan check, without a shell. The interface resolves with the exit code instead of
 * rejecting on a non-zero exit, so tests can inject a plain function returning real-format text; it rejects only
 * when the program could not run at all (ENOENT, EACCES), timed out or was aborted.
 */
import { execFile as nodeExecFile } from 'node:child_process';

export interface ExecFileResult {
  stdout: string;
  stderr: string;
  /** Exit status; null when the process was killed by a signal. */
  exitCode: number | null;
}

export interface ExecFileOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** Largest stdout/stderr accepted, in bytes; beyond it the process is killed and the call rejects. */
  maxBuffer?: number;
}

export type ExecFileFn = (file: string, args: readonly string[], options: ExecFileOptions) => Promise<ExecFileResult>;

const DEFAULT_MAX_BUFFER = 1024 * 1024;

/** The real implementation over `child_process.execFile` (never `shell: true`). */
export const execFileNoShell: ExecFileFn = (file, args, options) =>
  new Promise((resolve, reject) => {
    nodeExecFile(
      file,
      [...args],
      {
        shell: false,
        timeout: options.timeoutMs,
        maxBuffer: options.maxBuffer ?? DEFAULT_MAX_BUFFER,
        ...(options.signal ? { signal: options.signal } : {}),
        encoding: 'utf8',
        windowsHide: true,
        // Parsers expect untranslated, uncoloured, unpaged output.
        env: { ...process.env, LC_ALL: 'C', LANG: 'C', SYSTEMD_COLORS: '0', SYSTEMD_PAGER: '', PAGER: 'cat' },
      },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr, exitCode: 0 });
        const e = err as NodeJS.ErrnoException & { code?: unknown; killed?: boolean; signal?: string | null };
        // A numeric `code` means the program ran and exited non-zero: that is data for the caller, not a failure.
        if (typeof e.code === 'number' && !e.killed) return resolve({ stdout, stderr, exitCode: e.code });
        reject(err);
      },
    );
  });
