/**
 * Batched line output for the logs commands. Millions of one-line `write()` calls cost one syscall each (stdout
 * to a pipe or file is synchronous in Node), so lines are copied into a 64 KiB buffer and flushed together. It
 * honours backpressure (waits for 'drain') and turns EPIPE (`| head` went away) into a clean stop.
 */
import type { Writable } from 'node:stream';
import { StopScan } from './journal-files.js';

const BATCH = 64 * 1024;

export interface LineWriter {
  /** Queues one line (a newline is added). Resolves only when the stream needs draining; throws StopScan once the reader is gone. */
  line(text: string | Buffer): void | Promise<void>;
  /** Writes out whatever is queued. */
  flush(): void | Promise<void>;
  /** True once the reader closed the pipe. */
  readonly closed: boolean;
}

export function createLineWriter(out: Writable, batchSize = BATCH): LineWriter {
  let buf = Buffer.allocUnsafe(batchSize);
  let used = 0;
  let closed = false;
  let failure: Error | undefined;
  out.on('error', (err: NodeJS.ErrnoException) => {
    // EPIPE means the reader is gone, which is how `| head` says "enough"; anything else is a real failure.
    closed = true;
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') failure = err;
  });

  const push = (chunk: Buffer): void | Promise<void> => {
    if (failure) throw failure;
    if (closed || out.destroyed) {
      closed = true;
      throw new StopScan();
    }
    if (out.write(chunk)) return;
    return new Promise<void>((resolve) => {
      const done = (): void => {
        out.off('drain', done);
        out.off('close', done);
        out.off('error', done);
        resolve();
      };
      out.on('drain', done);
      out.on('close', done);
      out.on('error', done);
    });
  };

  const flush = (): void | Promise<void> => {
    if (used === 0) return;
    // The stream keeps a reference to what it was given, so hand it this buffer and start a fresh one.
    const chunk = buf.subarray(0, used);
    buf = Buffer.allocUnsafe(batchSize);
    used = 0;
    return push(chunk);
  };

  return {
    get closed() {
      return closed;
    },
    line(text) {
      const len = typeof text === 'string' ? Buffer.byteLength(text) : text.length;
      let pending: void | Promise<void> = undefined;
      if (used + len + 1 > buf.length) {
        pending = flush();
        if (len + 1 > buf.length) {
          // A line bigger than the batch goes out on its own.
          const big = Buffer.allocUnsafe(len + 1);
          if (typeof text === 'string') big.write(text, 0);
          else text.copy(big, 0);
          big[len] = 10;
          const p = pending;
          return p ? p.then(() => push(big)) : push(big);
        }
      }
      if (typeof text === 'string') buf.write(text, used);
      else text.copy(buf, used);
      used += len;
      buf[used++] = 10;
      return pending;
    },
    flush,
  };
}
