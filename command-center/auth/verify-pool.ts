/**
 * Ed25519 verification on worker threads, so the signature check of agent requests (the largest single cost of
 * ingest) runs on another core while the main thread parses, journals and answers.
 *
 * - Verifications asked for in the same turn of the event loop go to a worker as one batch (one transferred buffer,
 *   verify-batch.ts), which amortises postMessage; the least-busy worker gets it.
 * - When every worker already has `maxInFlight` verifications queued or has left a batch unanswered for more than
 *   `maxLagMs` (a worker thread descheduled on a busy machine), or the pool has no workers (`workers: 0`), or it is
 *   closed, the check runs inline on the calling thread: a saturated pool never becomes a queue of its own.
 * - A worker that dies (crash, OOM, terminated) is replaced; what it had in flight is verified inline, so no request
 *   is lost or answered twice. Workers that die before answering anything, several times running, are not replaced
 *   again (verification stays inline and the failure is logged) rather than respawning in a loop.
 * - `close()` verifies what is in flight inline, then terminates the workers: nothing hangs the process.
 * Verification is a pure function of its inputs, so which thread ran it never changes an answer.
 */
import { Worker } from 'node:worker_threads';
import type { Ed25519Backend } from '../../protocol/ed25519.js';
import { packBatch, type VerifyItem } from './verify-batch.js';

export interface VerifyPool {
  /** True only if `signature` is a valid Ed25519 signature of `message` by `publicKey` (never rejects). */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
  /** Workers alive now (0 when verifying inline). */
  readonly workers: number;
  /** Counters since start: verifications done on workers and inline, batches sent, workers replaced. */
  stats(): { onWorkers: number; inline: number; batches: number; replaced: number };
  close(): Promise<void>;
}

export interface VerifyPoolOptions {
  workers: number;
  /** Used for inline verification (no workers, saturation, a dead worker's batch, after close). */
  inline: Ed25519Backend;
  /** Verifications per message to a worker. */
  maxBatch?: number;
  /** Verifications queued on one worker before further ones run inline. */
  maxInFlight?: number;
  /** A worker whose oldest unanswered batch is older than this is lagging (descheduled on a busy machine): new checks skip it. */
  maxLagMs?: number;
  log?: { error(msg: string): void };
  /** Starts one worker running VERIFY_WORKER_SOURCE (tests wrap it to reach the threads). */
  spawn?: () => Worker;
}

/**
 * The worker's program. Plain CommonJS evaluated by `new Worker(src, { eval: true })`: the same text runs from
 * dist/ and under the test runner, with no separate build artefact to find. It keeps one KeyObject per public key
 * (importing one costs about as much as a verify) and answers each batch with one byte per item.
 */
export const VERIFY_WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createPublicKey, verify } = require('node:crypto');
const SPKI = Buffer.from('302a300506032b6570032100', 'hex');
const keys = new Map();
function keyOf(pub) {
  const id = Buffer.from(pub.buffer, pub.byteOffset, 32).toString('latin1');
  let k = keys.get(id);
  if (k === undefined) {
    try { k = createPublicKey({ key: Buffer.concat([SPKI, pub]), format: 'der', type: 'spki' }); } catch { k = null; }
    if (keys.size >= 20000) keys.delete(keys.keys().next().value);
    keys.set(id, k);
  }
  return k;
}
parentPort.on('message', ({ id, buf }) => {
  const bytes = new Uint8Array(buf);
  const view = new DataView(buf);
  const out = [];
  let at = 0;
  while (at + 100 <= bytes.byteLength) {
    const len = view.getUint32(at + 96, true);
    const key = keyOf(bytes.subarray(at, at + 32));
    let ok = false;
    if (key) { try { ok = verify(null, bytes.subarray(at + 100, at + 100 + len), key, bytes.subarray(at + 32, at + 96)); } catch { ok = false; } }
    out.push(ok ? 1 : 0);
    at += 100 + len;
  }
  parentPort.postMessage({ id, ok: Uint8Array.from(out) });
});
`;

interface Pending extends VerifyItem {
  resolve(ok: boolean): void;
}

interface Batch {
  items: Pending[];
  sentAt: number;
}

interface Slot {
  worker: Worker;
  inFlight: number;
  /** Unanswered batches in the order they were sent (a Map iterates in insertion order). */
  batches: Map<number, Batch>;
  answered: boolean;
  exited: boolean;
}

// Workers inherit the process's node options (--cpu-prof is welcome); --input-type=module would make the eval'd
// CommonJS source an ES module without `require`.
const defaultSpawn = () =>
  new Worker(VERIFY_WORKER_SOURCE, { eval: true, name: 'vaultmesh-verify', execArgv: process.execArgv.filter((a) => !a.startsWith('--input-type')) });

/** Resolves `auto` (or a number) to a worker count: one fewer than the cores, at most 2 (the main thread needs one). */
export function verifyWorkerCount(setting: number | 'auto', cores: number): number {
  if (setting !== 'auto') return setting;
  return Math.max(0, Math.min(2, cores - 1));
}

export function createVerifyPool(opts: VerifyPoolOptions): VerifyPool {
  const maxBatch = opts.maxBatch ?? 64;
  const maxInFlight = opts.maxInFlight ?? 512;
  const maxLagMs = opts.maxLagMs ?? 10;
  const spawn = opts.spawn ?? defaultSpawn;
  const slots: Slot[] = [];
  let queue: Pending[] = [];
  let flushScheduled = false;
  let closed = false;
  let nextId = 0;
  let deathsWithoutAnswer = 0;
  const counts = { onWorkers: 0, inline: 0, batches: 0, replaced: 0 };

  const verifyInline = (it: VerifyItem): boolean => {
    counts.inline++;
    return opts.inline.verify(it.publicKey, it.message, it.signature);
  };

  function start(): void {
    const worker = spawn();
    const slot: Slot = { worker, inFlight: 0, batches: new Map(), answered: false, exited: false };
    worker.on('message', (msg: { id: number; ok: Uint8Array }) => {
      const batch = slot.batches.get(msg.id)?.items;
      if (!batch) return;
      slot.batches.delete(msg.id);
      slot.inFlight -= batch.length;
      if (slot.inFlight === 0) worker.unref();
      slot.answered = true;
      deathsWithoutAnswer = 0;
      counts.onWorkers += batch.length;
      for (let i = 0; i < batch.length; i++) batch[i]!.resolve(msg.ok[i] === 1);
    });
    worker.on('error', (err) => opts.log?.error(`signature verification worker failed: ${err.message}`));
    worker.on('exit', (code) => onExit(slot, code));
    // Referenced only while it has work (see send), so an idle pool never keeps a process alive. After the
    // listeners: adding a 'message' listener references the worker's port again.
    worker.unref();
    slots.push(slot);
  }

  function onExit(slot: Slot, code: number): void {
    if (slot.exited) return;
    slot.exited = true;
    slots.splice(slots.indexOf(slot), 1);
    // Pure work: the dead worker's batches are verified here, in the order they were asked for.
    for (const batch of slot.batches.values()) for (const it of batch.items) it.resolve(verifyInline(it));
    slot.batches.clear();
    if (closed) return;
    if (!slot.answered) deathsWithoutAnswer++;
    if (deathsWithoutAnswer >= 3) {
      opts.log?.error(`signature verification workers keep dying before answering (last exit code ${code}): verifying inline from now on`);
      return;
    }
    opts.log?.error(`signature verification worker exited (code ${code}); starting a replacement`);
    counts.replaced++;
    start();
  }

  /** The worker with the least queued that is neither full nor lagging; undefined = verify inline. */
  function leastBusy(now: number): Slot | undefined {
    let best: Slot | undefined;
    for (const s of slots) {
      if (s.inFlight >= maxInFlight) continue;
      const oldest = s.batches.values().next().value as Batch | undefined;
      if (oldest && now - oldest.sentAt > maxLagMs) continue;
      if (!best || s.inFlight < best.inFlight) best = s;
    }
    return best;
  }

  function send(slot: Slot, batch: Pending[], now: number): void {
    const id = nextId++;
    slot.batches.set(id, { items: batch, sentAt: now });
    if (slot.inFlight === 0) slot.worker.ref();
    slot.inFlight += batch.length;
    counts.batches++;
    const buf = packBatch(batch);
    slot.worker.postMessage({ id, buf }, [buf]);
  }

  function flush(): void {
    flushScheduled = false;
    const items = queue;
    queue = [];
    const now = performance.now();
    for (let i = 0; i < items.length; ) {
      const slot = leastBusy(now);
      if (!slot) {
        // Every worker is full or lagging: this thread helps rather than letting the queue grow.
        for (; i < items.length; i++) items[i]!.resolve(verifyInline(items[i]!));
        return;
      }
      const n = Math.min(maxBatch, items.length - i, maxInFlight - slot.inFlight);
      send(slot, items.slice(i, i + n), now);
      i += n;
    }
  }

  for (let i = 0; i < opts.workers; i++) start();

  return {
    verify(publicKey, message, signature) {
      const item = { publicKey, message, signature };
      // Wrong sizes never verify, and would not pack: answer without a worker.
      if (publicKey.byteLength !== 32 || signature.byteLength !== 64) return Promise.resolve(false);
      if (closed || slots.length === 0) return Promise.resolve(verifyInline(item));
      return new Promise<boolean>((resolve) => {
        queue.push({ ...item, resolve });
        if (queue.length >= maxBatch * slots.length) flush();
        else if (!flushScheduled) {
          flushScheduled = true;
          setImmediate(flush);
        }
      });
    },
    get workers() {
      return slots.length;
    },
    stats: () => ({ ...counts }),
    async close() {
      if (closed) return;
      closed = true;
      const pending = queue;
      queue = [];
      for (const it of pending) it.resolve(verifyInline(it));
      const live = [...slots];
      for (const slot of live) onExit(slot, 0);
      await Promise.all(live.map((s) => s.worker.terminate()));
    },
  };
}
