/**
 * Ed25519 verification on worker threads, so the signature check of agent requests (the largest single cost of
 * ingest) runs on another core while the main thread parses, journals and answers.
 *
 * - Each worker has a shared-memory ring (verify-ring.ts): a check is handed over by copying it into the ring and
 *   bumping a counter, at once, in the caller's turn. The worker drains the ring and sleeps on the counter when it is
 *   empty. A worker found asleep is woken once at the end of the event-loop turn (one futex call for every check
 *   asked for in the turn); a busy worker is never woken, so it costs the main thread no wake-ups and no message
 *   serialisation. Answers come back in the ring; the main thread learns of them through
 *   `Atomics.waitAsync` on the worker's answer counter, collecting every answer ready at that moment. The least-busy
 *   worker gets each check.
 * - When every worker already has `maxInFlight` checks queued or has left one unanswered for more than `maxLagMs`
 *   (a worker thread descheduled on a busy machine), or the pool has no workers (`workers: 0`), or it is closed, or
 *   the message does not fit a ring slot (`maxMessageBytes`; request-signing payloads are a few hundred bytes), the
 *   check runs inline on the calling thread: a saturated pool never becomes a queue of its own.
 * - A worker that dies (crash, OOM, terminated) is replaced; what it had in flight and not answered is verified
 *   inline, so no request is lost or answered twice. Workers that die before answering anything, several times
 *   running, are not replaced again (verification stays inline and the failure is logged) rather than respawning in
 *   a loop.
 * - With `quietInline`, a check that would have to wake an idle, sleeping worker runs inline while the calling
 *   thread is mostly idle: checks arriving one at a time (a fleet heartbeating at its normal rate) each cost a
 *   wake-up of the worker and of this thread, which on a virtual machine costs more CPU than the verify itself.
 *   Once the thread is busy the workers take the checks again, and a worker with checks queued is never bypassed.
 * - With `nice`, the workers run at a lower scheduling priority than the main thread. On a machine with as many busy
 *   threads as cores, every request waits for the main thread and for the journal's durable write (a thread-pool
 *   thread, then the kernel's); with equal priorities those wait behind the worker's verifies, with a lower one they
 *   go first, and a worker left behind is bypassed as above.
 * - `close()` verifies what is in flight inline, then terminates the workers: nothing hangs the process.
 * Verification is a pure function of its inputs, so which thread ran it never changes an answer.
 */
import { Worker } from 'node:worker_threads';
import type { Ed25519Backend } from '../../protocol/ed25519.js';
import { CTL, CTL_BYTES, HEAD, fitsSlot, ringBytes, ringViews, slotsFor, writeItem, type RingLayout, type RingViews, type VerifyItem } from './verify-ring.js';

export interface VerifyPool {
  /** True only if `signature` is a valid Ed25519 signature of `message` by `publicKey` (never rejects). */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
  /** Workers alive now (0 when verifying inline). */
  readonly workers: number;
  /**
   * Counters since start: verifications done on workers and inline, wake-ups (hand-offs that found a worker asleep;
   * each wake-up takes every check queued until the worker sleeps again), workers replaced.
   */
  stats(): { onWorkers: number; inline: number; batches: number; replaced: number };
  close(): Promise<void>;
}

/** What a worker is started with (`workerData`): its ring, and how much lower than its creator it runs. */
export interface VerifyWorkerData extends RingLayout {
  buf: SharedArrayBuffer;
  nice: number;
}

export interface VerifyPoolOptions {
  workers: number;
  /** Used for inline verification (no workers, saturation, a dead worker's checks, after close). */
  inline: Ed25519Backend;
  /** Checks queued on one worker (its ring's size, rounded up to a power of two) before further ones run inline. */
  maxInFlight?: number;
  /** Longest signed message a ring slot holds; longer ones are verified inline. */
  maxMessageBytes?: number;
  /** A worker whose oldest unanswered check is older than this is lagging (descheduled on a busy machine): new checks skip it. */
  maxLagMs?: number;
  /**
   * Added to the workers' scheduling niceness (Linux: per thread; capped at 19), default 0. Every request waits on
   * the main thread and on the journal's durable write; a worker that yields the CPU to them first shortens both, and
   * one that falls behind is bypassed (`maxLagMs`).
   */
  nice?: number;
  log?: { error(msg: string): void };
  /** Starts one worker running VERIFY_WORKER_SOURCE with `workerData` (tests wrap it to reach the threads). */
  spawn?: (workerData: VerifyWorkerData) => Worker;
  /**
   * Verify inline instead of waking an idle worker while this thread's event-loop utilisation (0-1, over windows of
   * `windowMs`, default 100) is below `below`. Off unless given; `utilization` replaces the measurement (tests).
   */
  quietInline?: { below: number; windowMs?: number; utilization?: () => number };
}

/**
 * This thread's event-loop utilisation, measured when asked (no timer): over the last complete window of `windowMs`,
 * or over the window still open once it is a tenth of that long, whichever is higher, so that a burst after a quiet
 * spell shows within a few milliseconds instead of at the end of its window.
 */
export function eventLoopUtilizationGauge(windowMs: number, now = () => performance.now()): () => number {
  let mark = performance.eventLoopUtilization();
  let markAt = now();
  let value = 0;
  return () => {
    const t = now();
    const cur = performance.eventLoopUtilization();
    const open = performance.eventLoopUtilization(cur, mark).utilization;
    if (t - markAt >= windowMs) {
      value = open;
      mark = cur;
      markAt = t;
      return value;
    }
    return t - markAt >= windowMs / 10 ? Math.max(value, open) : value;
  };
}

/**
 * The worker's program. Plain CommonJS evaluated by `new Worker(src, { eval: true, workerData })`: the same text runs
 * from dist/ and under the test runner, with no separate build artefact to find. It keeps one KeyObject per public
 * key (an import per check would add about a tenth to each), answers each check in its ring slot, publishes the answer
 * counter after each, and wakes the main thread once per pass over the checks that were queued when the pass began,
 * or every 8 answers in a longer pass (as a batch of checks used to be answered by one message).
 */
export const VERIFY_WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { createPublicKey, verify } = require('node:crypto');
const { buf, slots, slotBytes, nice } = workerData;
const PRODUCED = ${CTL.produced}, DONE = ${CTL.done}, SLEEPING = ${CTL.sleeping}, STOP = ${CTL.stop};
const ctl = new Int32Array(buf, 0, ${CTL_BYTES} / 4);
const data = new Uint8Array(buf, ${CTL_BYTES}, slots * slotBytes);
const view = new DataView(buf, ${CTL_BYTES}, slots * slotBytes);
const answers = new Uint8Array(buf, ${CTL_BYTES} + slots * slotBytes, slots);
const mask = slots - 1;
if (nice > 0) {
  // Unprivileged: a thread may always lower its own priority. Only this thread (Linux nice values are per thread).
  const os = require('node:os');
  try { os.setPriority(Math.min(19, os.getPriority() + nice)); } catch (err) { console.error('vaultmesh-cc: signature worker keeps its priority: ' + err.message); }
}
const keys = new Map();
function keyOf(pub) {
  // A JWK, as protocol/ed25519.ts imports keys: the DER SPKI decoder costs more than the verify itself, and after a
  // start-up every node's first heartbeat brings a key this worker has not seen.
  const x = Buffer.from(pub.buffer, pub.byteOffset, 32).toString('base64url');
  let k = keys.get(x);
  if (k === undefined) {
    try { k = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' }); } catch { k = null; }
    if (keys.size >= 20000) keys.delete(keys.keys().next().value);
    keys.set(x, k);
  }
  return k;
}
let next = Atomics.load(ctl, DONE);
while (Atomics.load(ctl, STOP) === 0) {
  const produced = Atomics.load(ctl, PRODUCED);
  if (produced === next) {
    // Announce the sleep before checking once more inside wait: a hand-off either sees the flag and wakes us, or
    // bumped PRODUCED first, and then wait returns at once.
    Atomics.store(ctl, SLEEPING, 1);
    Atomics.wait(ctl, PRODUCED, produced);
    Atomics.store(ctl, SLEEPING, 0);
    continue;
  }
  const started = next;
  while (next !== produced) {
    const slot = next & mask;
    const at = slot * slotBytes;
    const len = view.getUint32(at + 96, true);
    const key = len <= slotBytes - ${HEAD} ? keyOf(data.subarray(at, at + 32)) : null;
    let ok = false;
    if (key) { try { ok = verify(null, data.subarray(at + ${HEAD}, at + ${HEAD} + len), key, data.subarray(at + 32, at + 96)); } catch { ok = false; } }
    answers[slot] = ok ? 1 : 2;
    next = (next + 1) | 0;
    Atomics.store(ctl, DONE, next);
    // Waking the main thread costs it a task: once per pass over what was queued, or per 8 answers in a long pass.
    if (((next - started) | 0) % 8 === 0) Atomics.notify(ctl, DONE);
  }
  Atomics.notify(ctl, DONE);
}
`;

// ES2024 (Node ≥ 16); the project's TypeScript lib is older.
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number): { async: boolean; value: Promise<unknown> | string } }).waitAsync;

interface Slot {
  worker: Worker;
  ring: RingViews;
  /** Resolvers of the checks in flight, by ring slot. */
  pending: (((ok: boolean) => void) | undefined)[];
  /** The items in flight, by ring slot (kept to verify them inline should the worker die). */
  items: (VerifyItem | undefined)[];
  /** When each check in flight was handed over (performance.now()), by ring slot. */
  sentAt: Float64Array;
  /** Next sequence number to write, and the next one whose answer the main thread has not collected. */
  produced: number;
  collected: number;
  /** An Atomics.waitAsync on the answer counter is outstanding. */
  armed: boolean;
  /** A wake-up of the sleeping worker is due at the end of this event-loop turn. */
  wakeScheduled: boolean;
  answered: boolean;
  exited: boolean;
}

// Workers inherit the process's node options (--cpu-prof is welcome); --input-type=module would make the eval'd
// CommonJS source an ES module without `require`.
const defaultSpawn = (workerData: VerifyWorkerData) =>
  new Worker(VERIFY_WORKER_SOURCE, { eval: true, name: 'vaultmesh-verify', workerData, execArgv: process.execArgv.filter((a) => !a.startsWith('--input-type')) });

/** Resolves `auto` (or a number) to a worker count: one fewer than the cores, at most 2 (the main thread needs one). */
export function verifyWorkerCount(setting: number | 'auto', cores: number): number {
  if (setting !== 'auto') return setting;
  return Math.max(0, Math.min(2, cores - 1));
}

export function createVerifyPool(opts: VerifyPoolOptions): VerifyPool {
  const layout: RingLayout = { slots: slotsFor(opts.maxInFlight ?? 512), slotBytes: HEAD + (opts.maxMessageBytes ?? 924) };
  const maxInFlight = opts.maxInFlight ?? 512;
  const mask = layout.slots - 1;
  const maxLagMs = opts.maxLagMs ?? 10;
  const spawn = opts.spawn ?? defaultSpawn;
  const slots: Slot[] = [];
  let closed = false;
  let deathsWithoutAnswer = 0;
  const counts = { onWorkers: 0, inline: 0, batches: 0, replaced: 0 };
  const quiet = opts.quietInline;
  const utilization = quiet ? (quiet.utilization ?? eventLoopUtilizationGauge(quiet.windowMs ?? 100)) : undefined;
  /** An idle worker asleep, and this thread mostly idle: waking the worker would cost more than the verify. */
  const cheaperInline = (slot: Slot): boolean =>
    utilization !== undefined && slot.produced === slot.collected && !slot.wakeScheduled && Atomics.load(slot.ring.ctl, CTL.sleeping) === 1 && utilization() < quiet!.below;

  const verifyInline = (it: VerifyItem): boolean => {
    counts.inline++;
    return opts.inline.verify(it.publicKey, it.message, it.signature);
  };

  function start(): void {
    const buf = new SharedArrayBuffer(ringBytes(layout));
    const worker = spawn({ buf, ...layout, nice: opts.nice ?? 0 });
    const slot: Slot = {
      worker,
      ring: ringViews(buf, layout),
      pending: new Array(layout.slots).fill(undefined),
      items: new Array(layout.slots).fill(undefined),
      sentAt: new Float64Array(layout.slots),
      produced: 0,
      collected: 0,
      armed: false,
      wakeScheduled: false,
      answered: false,
      exited: false,
    };
    worker.on('error', (err) => opts.log?.error(`signature verification worker failed: ${err.message}`));
    worker.on('exit', (code) => onExit(slot, code));
    // Referenced only while it has work (see verify), so an idle pool never keeps a process alive.
    worker.unref();
    slots.push(slot);
  }

  /** Answers every check the worker has finished, in order. */
  function collect(slot: Slot): void {
    const done = Atomics.load(slot.ring.ctl, CTL.done);
    if (slot.collected === done) return;
    slot.answered = true;
    deathsWithoutAnswer = 0;
    while (slot.collected !== done) {
      const i = slot.collected & mask;
      const resolve = slot.pending[i]!;
      const ok = slot.ring.answers[i] === 1;
      slot.pending[i] = undefined;
      slot.items[i] = undefined;
      slot.collected = (slot.collected + 1) | 0;
      counts.onWorkers++;
      resolve(ok);
    }
  }

  /** Waits (without blocking the thread) for the worker's next answer while checks are in flight. */
  function arm(slot: Slot): void {
    if (slot.armed || slot.exited) return;
    slot.armed = true;
    const w = waitAsync(slot.ring.ctl, CTL.done, slot.collected);
    if (w.async) void (w.value as Promise<unknown>).then(() => answered(slot));
    else queueMicrotask(() => answered(slot));
  }

  function answered(slot: Slot): void {
    slot.armed = false;
    if (slot.exited) return;
    collect(slot);
    if (slot.produced !== slot.collected) arm(slot);
    else slot.worker.unref();
  }

  function onExit(slot: Slot, code: number): void {
    if (slot.exited) return;
    // Answers the worker published before it died are good; the rest are verified here, in the order asked for.
    collect(slot);
    slot.exited = true;
    slots.splice(slots.indexOf(slot), 1);
    for (; slot.collected !== slot.produced; slot.collected = (slot.collected + 1) | 0) {
      const i = slot.collected & mask;
      const resolve = slot.pending[i]!;
      const item = slot.items[i]!;
      slot.pending[i] = undefined;
      slot.items[i] = undefined;
      resolve(verifyInline(item));
    }
    // Releases our own outstanding waitAsync on the dead worker's ring.
    if (slot.armed) Atomics.notify(slot.ring.ctl, CTL.done);
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
    let bestLoad = 0;
    for (const s of slots) {
      const inFlight = (s.produced - s.collected) | 0;
      if (inFlight >= maxInFlight) continue;
      if (inFlight > 0 && now - s.sentAt[s.collected & mask]! > maxLagMs) {
        // Answers may be waiting that this turn has not collected yet: a worker is lagging only if it really is.
        collect(s);
        const left = (s.produced - s.collected) | 0;
        if (left > 0 && now - s.sentAt[s.collected & mask]! > maxLagMs) continue;
      }
      const load = (s.produced - s.collected) | 0;
      if (!best || load < bestLoad) {
        best = s;
        bestLoad = load;
      }
    }
    return best;
  }

  function handOver(slot: Slot, item: VerifyItem, resolve: (ok: boolean) => void, now: number): void {
    const i = slot.produced & mask;
    writeItem(slot.ring, layout.slotBytes, i, item);
    slot.pending[i] = resolve;
    slot.items[i] = item;
    slot.sentAt[i] = now;
    if (slot.produced === slot.collected) slot.worker.ref();
    slot.produced = (slot.produced + 1) | 0;
    Atomics.store(slot.ring.ctl, CTL.produced, slot.produced);
    // A worker that is awake takes the check without being told. A sleeping one is woken once, after this turn of
    // the event loop: the checks of every request read in the turn then cost it (and this thread) one wake-up.
    if (!slot.wakeScheduled && Atomics.load(slot.ring.ctl, CTL.sleeping) === 1) {
      slot.wakeScheduled = true;
      setImmediate(wake, slot);
    }
    arm(slot);
  }

  function wake(slot: Slot): void {
    slot.wakeScheduled = false;
    // Still asleep: it has not seen the checks yet (an awake worker reads the counter before it sleeps again).
    if (slot.exited || Atomics.load(slot.ring.ctl, CTL.sleeping) !== 1) return;
    counts.batches++;
    Atomics.notify(slot.ring.ctl, CTL.produced, 1);
  }

  for (let i = 0; i < opts.workers; i++) start();

  return {
    verify(publicKey, message, signature) {
      const item = { publicKey, message, signature };
      // Wrong sizes never verify: answer without a worker.
      if (publicKey.byteLength !== 32 || signature.byteLength !== 64) return Promise.resolve(false);
      if (closed || slots.length === 0 || !fitsSlot(item, layout.slotBytes)) return Promise.resolve(verifyInline(item));
      const now = performance.now();
      const slot = leastBusy(now);
      // Every worker is full or lagging: this thread helps rather than letting a queue grow.
      if (!slot || cheaperInline(slot)) return Promise.resolve(verifyInline(item));
      return new Promise<boolean>((resolve) => handOver(slot, item, resolve, now));
    },
    get workers() {
      return slots.length;
    },
    stats: () => ({ ...counts }),
    async close() {
      if (closed) return;
      closed = true;
      const live = [...slots];
      for (const slot of live) {
        Atomics.store(slot.ring.ctl, CTL.stop, 1);
        Atomics.notify(slot.ring.ctl, CTL.produced);
        onExit(slot, 0);
      }
      await Promise.all(live.map((s) => s.worker.terminate()));
    },
  };
}
