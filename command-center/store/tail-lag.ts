/**
 * How far this replica trails the log (for /healthz and the metrics): the log's head seq minus the seq this replica
 * has applied. The head is read at most once per `cacheMs` (a health probe every 100 ms must not become a query
 * every 100 ms); a failed read reports null rather than a made-up number. A probe waits for a read at most
 * `waitMs`: with the database unreachable (a connect can take seconds) it gets the last known value at once.
 */
export interface TailLag {
  /** Entries committed to the log that this replica has not applied yet; null when the head cannot be read. */
  get(): Promise<number | null>;
  /** The last value `get` computed (null before the first or after a failed read). */
  last(): number | null;
}

export function createTailLag(opts: { readHead: () => Promise<number>; applied: () => number; nowMs?: () => number; cacheMs?: number; waitMs?: number }): TailLag {
  const nowMs = opts.nowMs ?? Date.now;
  const cacheMs = opts.cacheMs ?? 1000;
  const waitMs = opts.waitMs ?? 500;
  let head: number | null = null;
  let readAt = -Infinity;
  let reading: Promise<void> | undefined;
  let lag: number | null = null;
  const compute = () => (lag = head === null ? null : Math.max(0, head - opts.applied()));
  return {
    async get() {
      if (nowMs() - readAt >= cacheMs) {
        reading ??= opts
          .readHead()
          .then(
            (h) => {
              head = h;
            },
            () => {
              head = null;
            },
          )
          .finally(() => {
            readAt = nowMs();
            reading = undefined;
          });
        let timer: NodeJS.Timeout | undefined;
        const done = await Promise.race([reading.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), waitMs)))]);
        clearTimeout(timer);
        if (!done) return lag; // still reading: the last value
      }
      return compute();
    },
    last: () => lag,
  };
}

/** A JSONL center writes its own log: it never trails it. */
export const noTailLag: TailLag = { get: async () => 0, last: () => 0 };
