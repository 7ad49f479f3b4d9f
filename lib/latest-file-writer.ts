/**
 * One file rewritten whenever its content changes (a ledger's C2SP checkpoint, the heartbeat summary), written off
 * the event loop with `writeFileAtomic`. At most one write is in flight; content given meanwhile waits, and newer
 * content replaces waiting content (only the newest matters: each version supersedes the one before). So the file
 * on disk is always a whole version, and after `flush()` it is the newest one.
 */
import { writeFileAtomic } from './atomic-file.js';

export interface LatestFileWriter {
  readonly path: string;
  /**
   * Writes `data` (or, if newer content comes first, that content instead). Resolves once the file holds `data` or
   * a newer version, durably; rejects if the write that was to carry it failed.
   */
  write(data: string | Uint8Array): Promise<void>;
  /** Resolves once everything given so far is on disk (or rejects with the last write's failure). */
  flush(): Promise<void>;
  /** True while a write is in flight or waiting. */
  readonly busy: boolean;
}

interface Waiting {
  data: string | Uint8Array;
  settle: Array<{ resolve: () => void; reject: (err: unknown) => void }>;
}

export function createLatestFileWriter(
  path: string,
  mode: number,
  write: (path: string, data: string | Uint8Array, mode: number) => Promise<void> = writeFileAtomic,
): LatestFileWriter {
  let inFlight: Promise<void> | undefined; // settles its callers, then starts the waiting content
  let current: Promise<void> | undefined; // the write itself, for flush()
  let waiting: Waiting | undefined;

  const start = (): void => {
    const next = waiting;
    waiting = undefined;
    if (!next) {
      inFlight = undefined;
      current = undefined;
      return;
    }
    current = write(path, next.data, mode);
    inFlight = current.then(
      () => {
        for (const s of next.settle) s.resolve();
      },
      (err: unknown) => {
        for (const s of next.settle) s.reject(err);
      },
    );
    void inFlight.then(start);
  };

  const writer: LatestFileWriter = {
    path,
    get busy() {
      return inFlight !== undefined || waiting !== undefined;
    },
    write(data) {
      return new Promise<void>((resolve, reject) => {
        // Superseded content's callers wait for the newer content: it carries what they wrote, and more.
        waiting = { data, settle: [...(waiting?.settle ?? []), { resolve, reject }] };
        if (!inFlight) start();
      });
    },
    flush() {
      if (waiting) return writer.write(waiting.data);
      return current ?? Promise.resolve();
    },
  };
  return writer;
}
