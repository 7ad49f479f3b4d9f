/**
 * The offline outbox: when the center is unreachable, heartbeats and scan reports wait in a bounded JSONL file in
 * the agent's state dir (`outbox.jsonl`) and are delivered in order once it answers again.
 *
 * - Every item carries an agent-chosen id (heartbeat `id`, scan report `id`), and the center de-duplicates by
 *   envelope id, so a retry after a lost reply never stores a fact twice.
 * - Bounded by bytes and entries: when full, the oldest heartbeat goes first; a scan is evicted only when no
 *   heartbeat is left to evict.
 * - Delivery: oldest first, one at a time; a transient failure (unreachable, 5xx, 408, 429, 401/403 which a fixed
 *   credential or clock cures) stops the flush and retries after an exponential backoff with full jitter; an item the
 *   center rejects as invalid (other 4xx) is dropped with a log line so it cannot block the queue forever.
 * - The file is appended per item; sent items are cut from the head by rewriting the file (atomically) every
 *   `compactEvery` deliveries and when the queue empties. A crash in between re-sends a few items: harmless.
 * - Every heartbeat posted carries an outbox report (`outbox: { queued, delivered }`, docs/PROTOCOL.md): the
 *   center journals a node's `rejoin` once a report says the backlog is delivered, with that count. The report is
 *   added when the heartbeat is posted, not when it is queued, so it says what the queue holds then.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { isVaultMeshError } from '../protocol/errors.js';
import type { OutboxReport } from '../protocol/agent-api.js';
import { writeFileAtomicSync } from '../lib/atomic-file.js';

export type OutboxKind = 'heartbeat' | 'scan';

export interface OutboxEntry {
  kind: OutboxKind;
  path: string;
  body: unknown;
  queued_at: string;
}

export interface OutboxOptions {
  file: string;
  maxBytes?: number;
  maxEntries?: number;
  compactEvery?: number;
  now?: () => Date;
  log?: (msg: string) => void;
}

export interface Outbox {
  readonly length: number;
  readonly bytes: number;
  enqueue(kind: OutboxKind, path: string, body: unknown): void;
  peek(): OutboxEntry | undefined;
  /** Removes the head (delivered or dropped). */
  shift(): void;
  entries(): OutboxEntry[];
  /** Rewrites the file to hold exactly the queued entries. */
  compact(): void;
}

interface Held {
  entry: OutboxEntry;
  line: string;
}

export function openOutbox(opts: OutboxOptions): Outbox {
  const maxBytes = opts.maxBytes ?? 16 * 1024 * 1024;
  const maxEntries = opts.maxEntries ?? 50_000;
  const compactEvery = opts.compactEvery ?? 64;
  const now = opts.now ?? (() => new Date());
  const log = opts.log ?? (() => undefined);
  let queue: Held[] = [];
  let bytes = 0;
  let sinceCompact = 0;

  if (existsSync(opts.file)) {
    const text = readFileSync(opts.file, 'utf8');
    const lines = text.split('\n');
    let bad = 0;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (!line) continue;
      try {
        const e = JSON.parse(line) as OutboxEntry;
        if ((e.kind === 'heartbeat' || e.kind === 'scan') && typeof e.path === 'string') queue.push({ entry: e, line: `${line}\n` });
        else bad++;
      } catch {
        bad++; // a torn last line from a crash mid-append
      }
    }
    if (bad) log(`outbox: skipped ${bad} unreadable line(s) in ${opts.file}`);
    bytes = queue.reduce((n, h) => n + Buffer.byteLength(h.line), 0);
    if (bad) rewrite();
  }

  function rewrite(): void {
    writeFileAtomicSync(opts.file, queue.map((h) => h.line).join(''), 0o600);
    sinceCompact = 0;
  }

  function evict(): void {
    while (queue.length && (bytes > maxBytes || queue.length > maxEntries)) {
      let i = queue.findIndex((h) => h.entry.kind === 'heartbeat');
      if (i < 0) i = 0; // only scans left: the oldest scan goes
      const [gone] = queue.splice(i, 1);
      bytes -= Buffer.byteLength(gone!.line);
      log(`outbox full: dropped the oldest queued ${gone!.entry.kind} (${gone!.entry.queued_at})`);
    }
  }

  return {
    get length() {
      return queue.length;
    },
    get bytes() {
      return bytes;
    },
    enqueue(kind, path, body) {
      const entry: OutboxEntry = { kind, path, body, queued_at: now().toISOString() };
      const line = `${JSON.stringify(entry)}\n`;
      queue.push({ entry, line });
      bytes += Buffer.byteLength(line);
      const before = queue.length;
      evict();
      if (queue.length < before) rewrite();
      else {
        const fd = openSync(opts.file, 'a', 0o600);
        try {
          writeSync(fd, line);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      }
    },
    peek: () => queue[0]?.entry,
    shift() {
      const gone = queue.shift();
      if (!gone) return;
      bytes -= Buffer.byteLength(gone.line);
      if (++sinceCompact >= compactEvery || queue.length === 0) rewrite();
    },
    entries: () => queue.map((h) => h.entry),
    compact: rewrite,
  };
}

/** A center older than the outbox report refuses a heartbeat that has it (an unrecognised key). */
function refusesReport(err: unknown): boolean {
  return isVaultMeshError(err) && err.code === 'VALIDATION_ERROR' && (err.details ?? []).some((d) => d.path === 'body.outbox' || d.path === 'outbox' || d.message.includes('"outbox"'));
}

/** Whether a failed delivery should be retried later (true) or the item dropped (false). */
export function isTransient(err: unknown): boolean {
  if (!isVaultMeshError(err)) return true;
  if (err.code === 'CC_UNREACHABLE') return true;
  return err.status >= 500 || err.status === 408 || err.status === 429 || err.status === 401 || err.status === 403;
}

/** Exponential backoff with full jitter: uniform in [0, min(cap, base·2^attempt)], at least `minMs`. */
export function backoffMs(attempt: number, opts: { baseMs?: number; capMs?: number; minMs?: number; random?: () => number } = {}): number {
  const base = opts.baseMs ?? 1000;
  const cap = opts.capMs ?? 300_000;
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 30));
  return Math.max(opts.minMs ?? 250, Math.floor((opts.random ?? Math.random)() * ceiling));
}

export interface OutboxSender {
  /**
   * Delivers now if nothing is waiting and the center answers; otherwise queues (when `canQueue`) and returns
   * `{ queued: true }`. Errors that are not transient are thrown as before.
   */
  send<T>(kind: OutboxKind, path: string, body: unknown, opts?: { canQueue?: boolean }): Promise<(T & { queued?: false }) | { queued: true; seq?: undefined }>;
  /** Delivers queued items in order until empty or a transient failure; then schedules a retry. */
  flush(): Promise<void>;
  start(): void;
  stop(): void;
  readonly outbox: Outbox;
}

export function createOutboxSender(deps: {
  outbox: Outbox;
  post: <T>(path: string, body: unknown) => Promise<T>;
  log?: (msg: string) => void;
  backoff?: (attempt: number) => number;
}): OutboxSender {
  const { outbox } = deps;
  const log = deps.log ?? (() => undefined);
  const backoff = deps.backoff ?? ((a: number) => backoffMs(a));
  /**
   * Buffered entries delivered since the center last stored a report of an empty outbox: the count a `rejoin`
   * gives. In memory: an agent restarted while delivering a backlog counts what it delivers after the restart.
   */
  let backlogDelivered = 0;
  /** Off once a center older than the report refused it (its heartbeat schema is strict): then sent without. */
  let reportOutbox = true;
  let attempt = 0;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let stopped = true;
  let flushing: Promise<void> | undefined;

  const schedule = () => {
    if (stopped || timer || !outbox.length) return;
    const ms = backoff(attempt);
    timer = setTimeout(() => {
      timer = undefined;
      void flush();
    }, ms);
    timer.unref?.();
  };

  /**
   * Posts one item; a heartbeat with the report. `fromOutbox`: it is the queue's head (it counts as delivered).
   * A heartbeat answered as a duplicate was stored before, with the report of that first attempt, so only a fresh
   * one that reported an empty outbox resets the count.
   */
  const post = async <T>(kind: OutboxKind, path: string, body: unknown, fromOutbox: boolean): Promise<T> => {
    if (kind !== 'heartbeat' || !reportOutbox || typeof body !== 'object' || body === null) {
      const res = await deps.post<T>(path, body);
      if (fromOutbox) backlogDelivered++;
      return res;
    }
    const report: OutboxReport = fromOutbox ? { queued: outbox.length - 1, delivered: backlogDelivered + 1 } : { queued: 0, delivered: backlogDelivered };
    let res: T;
    try {
      res = await deps.post<T>(path, { ...body, outbox: report });
    } catch (err) {
      if (!refusesReport(err)) throw err;
      reportOutbox = false;
      log('the center does not take the outbox report in heartbeats (it is older than this agent): sending heartbeats without it');
      return post(kind, path, body, fromOutbox);
    }
    if (fromOutbox) backlogDelivered++;
    if (report.queued === 0 && (res as { duplicate?: unknown } | undefined)?.duplicate !== true) backlogDelivered = 0;
    return res;
  };

  const flushOnce = async (): Promise<void> => {
    let sent = 0;
    for (let e = outbox.peek(); e; e = outbox.peek()) {
      try {
        await post(e.kind, e.path, e.body, true);
        sent++;
        outbox.shift();
        attempt = 0;
      } catch (err) {
        if (isTransient(err)) {
          attempt++;
          if (sent) log(`outbox: delivered ${sent}, ${outbox.length} still queued`);
          schedule();
          return;
        }
        log(`outbox: the center rejected a queued ${e.kind} (${isVaultMeshError(err) ? `${err.code}: ${err.message}` : String(err)}); dropped`);
        outbox.shift();
      }
    }
    if (sent) log(`outbox: delivered ${sent} queued item(s); empty`);
  };

  const flush = (): Promise<void> => {
    if (running) return flushing!;
    running = true;
    flushing = flushOnce().finally(() => (running = false));
    return flushing;
  };

  return {
    outbox,
    async send<T>(kind: OutboxKind, path: string, body: unknown, opts: { canQueue?: boolean } = {}) {
      const canQueue = opts.canQueue ?? true;
      if (outbox.length && canQueue) {
        // Keep the order: behind what is already waiting.
        outbox.enqueue(kind, path, body);
        if (!timer) await flush();
        return { queued: true as const };
      }
      try {
        return await post<T & { queued?: false }>(kind, path, body, false);
      } catch (err) {
        if (!canQueue || !isTransient(err)) throw err;
        outbox.enqueue(kind, path, body);
        attempt = Math.max(attempt, 1);
        log(`center unreachable (${isVaultMeshError(err) ? err.code : String(err)}): ${kind} queued in the outbox (${outbox.length} waiting)`);
        schedule();
        return { queued: true as const };
      }
    },
    flush,
    start() {
      stopped = false;
      if (outbox.length) void flush();
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      outbox.compact();
    },
  };
}
