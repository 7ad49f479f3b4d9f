import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readdirSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { ROOT, assertBuilt } from '../../test/process-helpers.js';
import { nodeCryptoBackend } from '../../protocol/ed25519.js';
import { generateKeyPair } from '../../protocol/keys.js';
import { CTL, HEAD, fitsSlot, readItem, ringBytes, ringViews, slotsFor, writeItem } from './verify-ring.js';
import { VERIFY_WORKER_SOURCE, createVerifyPool, eventLoopUtilizationGauge, verifyWorkerCount, type VerifyPool, type VerifyWorkerData } from './verify-pool.js';

const keys = Array.from({ length: 4 }, () => generateKeyPair());

/** n signed messages over distinct keys; every third one tampered (wrong message, wrong key or broken signature). */
function cases(n: number) {
  return Array.from({ length: n }, (_, i) => {
    const key = keys[i % keys.length]!;
    const message = Buffer.from(`message ${i} ${'x'.repeat(i % 300)}`);
    const signature = nodeCryptoBackend.sign(key.seed, message);
    const bad = i % 3 === 2;
    const variant = i % 9;
    if (!bad) return { publicKey: key.publicKey, message, signature, expect: true };
    if (variant === 2) return { publicKey: key.publicKey, message: Buffer.concat([message, Buffer.from('!')]), signature, expect: false };
    if (variant === 5) return { publicKey: keys[(i + 1) % keys.length]!.publicKey, message, signature, expect: false };
    const broken = Uint8Array.from(signature);
    broken[10]! ^= 1;
    return { publicKey: key.publicKey, message, signature: broken, expect: false };
  });
}

let pool: VerifyPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

describe('verify ring layout', () => {
  it('writes and reads items in their slots, messages of any length that fit; refuses what does not fit', () => {
    const layout = { slots: 8, slotBytes: HEAD + 300 };
    const ring = ringViews(new SharedArrayBuffer(ringBytes(layout)), layout);
    const items = cases(8).map(({ publicKey, message, signature }) => ({ publicKey, message, signature }));
    items.forEach((it, i) => writeItem(ring, layout.slotBytes, 7 - i, it));
    const back = items.map((_, i) => readItem(ring, layout.slotBytes, 7 - i));
    expect(back.map((b) => [Buffer.from(b.publicKey), Buffer.from(b.signature), Buffer.from(b.message)])).toEqual(
      items.map((b) => [Buffer.from(b.publicKey), Buffer.from(b.signature), Buffer.from(b.message)]),
    );
    const [c] = cases(1);
    expect(fitsSlot({ ...c!, message: new Uint8Array(300) }, layout.slotBytes)).toBe(true);
    expect(fitsSlot({ ...c!, message: new Uint8Array(301) }, layout.slotBytes)).toBe(false);
    expect(fitsSlot({ ...c!, publicKey: new Uint8Array(31) }, layout.slotBytes)).toBe(false);
    // The two threads' counters never share a cache line; the ring's size is a power of two.
    expect(new Set(Object.values(CTL).map((i) => Math.floor((i * 4) / 64))).size).toBe(Object.keys(CTL).length);
    expect([1, 2, 3, 500, 512, 513].map(slotsFor)).toEqual([1, 2, 4, 512, 512, 1024]);
  });
});

describe('verify pool', () => {
  it('auto is min(2, cores - 1); a number is taken as it is', () => {
    expect([1, 2, 4, 16].map((c) => verifyWorkerCount('auto', c))).toEqual([0, 1, 2, 2]);
    expect(verifyWorkerCount(0, 8)).toBe(0);
    expect(verifyWorkerCount(3, 2)).toBe(3);
  });

  it('runs its workers `nice` lower than the thread that made them (Linux: per thread), and leaves them be with 0', async () => {
    /** Niceness of each of this process's threads, from /proc (field 19 of a task's stat). */
    const niceness = () =>
      readdirSync('/proc/self/task').map((tid) => {
        const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
      });
    const base = getPriority();
    const lowered = Math.min(19, base + 7);
    const answered = (p: VerifyPool) => Promise.all(cases(6).map((c) => p.verify(c.publicKey, c.message, c.signature)));
    const before = niceness().filter((n) => n === lowered).length;
    pool = createVerifyPool({ workers: 2, inline: nodeCryptoBackend, maxLagMs: 60_000, nice: 7 });
    await answered(pool);
    expect(pool.stats().onWorkers).toBe(6);
    expect(niceness().filter((n) => n === lowered).length - before).toBe(2);
    expect(getPriority()).toBe(base); // the calling thread keeps its own
    await pool.close();
    pool = createVerifyPool({ workers: 2, inline: nodeCryptoBackend, maxLagMs: 60_000 });
    await answered(pool);
    expect(niceness().filter((n) => n === lowered).length - before).toBe(0);
  });

  it('verifies good signatures and rejects bad ones on its workers, each answer to its own request', async () => {
    // No lag limit here: on a busy test machine a worker may well take longer than 10 ms to start.
    pool = createVerifyPool({ workers: 2, inline: nodeCryptoBackend, maxLagMs: 60_000 });
    const cs = cases(300);
    const answers = await Promise.all(cs.map((c) => pool!.verify(c.publicKey, c.message, c.signature)));
    expect(answers).toEqual(cs.map((c) => c.expect));
    const s = pool.stats();
    expect(s.onWorkers).toBe(300);
    expect(s.inline).toBe(0);
    // A worker that is awake (or not yet started) takes further checks without a wake-up: far fewer wake-ups than checks.
    expect(s.batches).toBeLessThan(30);
  });

  it('answers checks handed over one at a time, each as soon as its worker is done, across many laps of the ring', async () => {
    pool = createVerifyPool({ workers: 1, inline: nodeCryptoBackend, maxInFlight: 4, maxLagMs: 60_000 });
    const cs = cases(40);
    for (const [i, c] of cs.entries()) {
      expect(await pool.verify(c.publicKey, c.message, c.signature)).toBe(c.expect);
      // Now and then the worker is left long enough to fall asleep, so the hand-off must wake it.
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 30));
    }
    // Ten laps of a four-slot ring, nothing inline.
    expect(pool.stats()).toMatchObject({ onWorkers: 40, inline: 0 });
    expect(pool.stats().batches).toBeGreaterThanOrEqual(4);
    expect(pool.stats().batches).toBeLessThanOrEqual(40);
  });

  it('a message longer than a ring slot is verified inline', async () => {
    pool = createVerifyPool({ workers: 1, inline: nodeCryptoBackend, maxMessageBytes: 64, maxLagMs: 60_000 });
    const key = keys[0]!;
    const long = Buffer.alloc(65, 1);
    const short = Buffer.alloc(64, 1);
    expect(await pool.verify(key.publicKey, long, nodeCryptoBackend.sign(key.seed, long))).toBe(true);
    expect(await pool.verify(key.publicKey, short, nodeCryptoBackend.sign(key.seed, short))).toBe(true);
    expect(pool.stats()).toMatchObject({ inline: 1, onWorkers: 1 });
  });

  it('answers malformed keys and signatures false without a fault', async () => {
    pool = createVerifyPool({ workers: 1, inline: nodeCryptoBackend });
    const msg = Buffer.from('m');
    const sig = nodeCryptoBackend.sign(keys[0]!.seed, msg);
    expect(await pool.verify(new Uint8Array(31), msg, sig)).toBe(false);
    expect(await pool.verify(keys[0]!.publicKey, msg, sig.subarray(0, 63))).toBe(false);
    // 32 bytes that are not a point on the curve: the worker must answer false, not die.
    expect(await pool.verify(new Uint8Array(32).fill(0xff), msg, sig)).toBe(false);
    expect(await pool.verify(keys[0]!.publicKey, msg, sig)).toBe(true);
    expect(pool.stats().replaced).toBe(0);
  });

  it('gives the verdicts of the inline backend for keys no honest signer has (small order, non-canonical, off the curve)', async () => {
    pool = createVerifyPool({ workers: 1, inline: nodeCryptoBackend, maxLagMs: 60_000 });
    const odd = [
      '0000000000000000000000000000000000000000000000000000000000000000',
      '0100000000000000000000000000000000000000000000000000000000000000',
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
      '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
    ].map((h) => Buffer.from(h, 'hex'));
    const msg = Buffer.from('m');
    // R = identity, s = 0: under the identity key (01 00…) OpenSSL accepts it, inline and on the worker alike. What
    // matters here is that the two agree, whatever OpenSSL says about such keys.
    const identitySig = Buffer.concat([Buffer.from('01', 'hex'), Buffer.alloc(63)]);
    const items = [...odd.flatMap((k) => [[k, msg, identitySig], [k, msg, Buffer.alloc(64)], [k, msg, nodeCryptoBackend.sign(keys[0]!.seed, msg)]]), ...cases(12).map((c) => [c.publicKey, c.message, c.signature])] as Array<[Uint8Array, Uint8Array, Uint8Array]>;
    const onWorker = await Promise.all(items.map(([k, m, s]) => pool!.verify(k, m, s)));
    expect(onWorker).toEqual(items.map(([k, m, s]) => nodeCryptoBackend.verify(k, m, s)));
    expect(onWorker.slice(odd.length * 3)).toEqual(cases(12).map((c) => c.expect));
    expect(onWorker.slice(0, odd.length * 3).filter(Boolean).length).toBe(2); // identity key + identity signature; edff…7f + zeros
    expect(pool.stats()).toMatchObject({ inline: 0, replaced: 0 });
  });

  it('while the thread is quiet, verifies inline instead of waking an idle worker; busy, or with checks queued, hands over', async () => {
    let util = 0.1;
    let ctl: Int32Array | undefined;
    const spawn = (data: VerifyWorkerData) => {
      ctl = new Int32Array(data.buf, 0, 64);
      return new Worker(VERIFY_WORKER_SOURCE, { eval: true, workerData: data });
    };
    pool = createVerifyPool({ workers: 1, inline: nodeCryptoBackend, maxLagMs: 60_000, spawn, quietInline: { below: 0.5, utilization: () => util } });
    const asleep = async () => {
      for (let i = 0; i < 500 && Atomics.load(ctl!, CTL.sleeping) !== 1; i++) await new Promise((r) => setTimeout(r, 10));
      expect(Atomics.load(ctl!, CTL.sleeping)).toBe(1);
    };
    await asleep();
    const cs = cases(12);
    for (const c of cs) expect(await pool.verify(c.publicKey, c.message, c.signature)).toBe(c.expect);
    expect(pool.stats()).toMatchObject({ inline: 12, onWorkers: 0, batches: 0 });

    util = 0.9; // busy: the worker is woken for them
    for (const c of cs) expect(await pool.verify(c.publicKey, c.message, c.signature)).toBe(c.expect);
    expect(pool.stats()).toMatchObject({ inline: 12, onWorkers: 12 });
    expect(pool.stats().batches).toBeGreaterThan(0);

    // Checks already queued on the worker: later ones join them even when quiet (the wake-up is paid for).
    await asleep();
    const first = cs.map((c) => pool!.verify(c.publicKey, c.message, c.signature));
    util = 0.1;
    const more = cs.map((c) => pool!.verify(c.publicKey, c.message, c.signature));
    expect(await Promise.all([...first, ...more])).toEqual([...cs, ...cs].map((c) => c.expect));
    expect(pool.stats()).toMatchObject({ inline: 12, onWorkers: 36 });
  });

  it('measures event-loop utilisation over windows, and sees a burst in the window still open', async () => {
    let t = 0;
    const spin = (ms: number) => {
      const until = performance.now() + ms;
      while (performance.now() < until); // the loop held: busy
    };
    const gauge = eventLoopUtilizationGauge(50, () => t);
    expect(gauge()).toBe(0); // no window closed yet, and the open one too young to count
    spin(80);
    t = 80;
    expect(gauge()).toBeGreaterThan(0.7);
    await new Promise((r) => setTimeout(r, 120)); // the loop idle
    t = 100; // inside the window just begun: the closed window's busy figure still holds
    expect(gauge()).toBeGreaterThan(0.7);
    t = 200;
    expect(gauge()).toBeLessThan(0.4);
    t = 203; // the open window is younger than a tenth of the window: the quiet figure
    spin(30);
    expect(gauge()).toBeLessThan(0.4);
    t = 210; // old enough: the burst in it counts
    expect(gauge()).toBeGreaterThan(0.7);
  });

  it('with 0 workers, or past saturation, verifies inline', async () => {
    pool = createVerifyPool({ workers: 0, inline: nodeCryptoBackend });
    const cs = cases(30);
    expect(await Promise.all(cs.map((c) => pool!.verify(c.publicKey, c.message, c.signature)))).toEqual(cs.map((c) => c.expect));
    expect(pool.stats()).toMatchObject({ inline: 30, onWorkers: 0 });
    await pool.close();

    pool = createVerifyPool({ workers: 1, inline: nodeCryptoBackend, maxInFlight: 8, maxLagMs: 60_000 });
    const more = cases(100);
    expect(await Promise.all(more.map((c) => pool!.verify(c.publicKey, c.message, c.signature)))).toEqual(more.map((c) => c.expect));
    const s = pool.stats();
    expect(s.onWorkers + s.inline).toBe(100);
    expect(s.onWorkers).toBeGreaterThanOrEqual(8);
    expect(s.inline).toBeGreaterThan(0);
  });

  it('a lagging worker (answers late, e.g. descheduled) is skipped: new checks run inline, its own batch still answers', async () => {
    // The real worker program, stalled for 1 s before its first check (as if descheduled): far longer than the
    // bound below, so a busy machine's slower turns cannot make waiting behind it look like skipping it.
    const slow = `const c = require('node:crypto'); const real = c.verify; let stalled = false;
      c.verify = (...a) => { if (!stalled) { stalled = true; Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000); } return real(...a); };
      { ${VERIFY_WORKER_SOURCE} }`;
    pool = createVerifyPool({ workers: 1, inline: nodeCryptoBackend, maxLagMs: 20, spawn: (workerData) => new Worker(slow, { eval: true, workerData }) });
    const first = cases(10);
    const t0 = performance.now();
    const firstAnswers = Promise.all(first.map((c) => pool!.verify(c.publicKey, c.message, c.signature)));
    await new Promise((r) => setTimeout(r, 60));
    const second = cases(12);
    expect(await Promise.all(second.map((c) => pool!.verify(c.publicKey, c.message, c.signature)))).toEqual(second.map((c) => c.expect));
    expect(performance.now() - t0).toBeLessThan(700); // did not wait behind the slow batch
    expect(pool.stats()).toMatchObject({ inline: 12, onWorkers: 0 });
    expect(await firstAnswers).toEqual(first.map((c) => c.expect));
    expect(pool.stats()).toMatchObject({ inline: 12, onWorkers: 10 });
  });

  it('a killed worker is replaced; what it had in flight is still verified, and later requests go to the new one', async () => {
    const spawned: Worker[] = [];
    const errors: string[] = [];
    pool = createVerifyPool({
      workers: 1,
      inline: nodeCryptoBackend,
      maxLagMs: 60_000,
      log: { error: (m) => errors.push(m) },
      spawn: (workerData: VerifyWorkerData) => {
        const w = new Worker(VERIFY_WORKER_SOURCE, { eval: true, workerData });
        spawned.push(w);
        return w;
      },
    });
    const cs = cases(200);
    const inFlight = Promise.all(cs.map((c) => pool!.verify(c.publicKey, c.message, c.signature)));
    await new Promise((r) => setTimeout(r, 5)); // the worker has started on them
    await spawned[0]!.terminate();
    expect(await inFlight).toEqual(cs.map((c) => c.expect));
    await expect.poll(() => spawned.length).toBe(2);
    expect(pool.workers).toBe(1);
    expect(pool.stats().replaced).toBe(1);
    expect(errors.join('\n')).toMatch(/exited .*replacement/);

    const before = pool.stats().onWorkers;
    const next = cases(50);
    expect(await Promise.all(next.map((c) => pool!.verify(c.publicKey, c.message, c.signature)))).toEqual(next.map((c) => c.expect));
    expect(pool.stats().onWorkers - before).toBe(50);
  });

  it('stops replacing workers that die before answering, and verifies inline', async () => {
    const errors: string[] = [];
    let spawned = 0;
    pool = createVerifyPool({
      workers: 1,
      inline: nodeCryptoBackend,
      log: { error: (m) => errors.push(m) },
      spawn: () => {
        spawned++;
        return new Worker('process.exit(3)', { eval: true });
      },
    });
    await expect.poll(() => pool!.workers, { timeout: 10_000 }).toBe(0);
    expect(spawned).toBe(3);
    expect(errors.at(-1)).toMatch(/inline from now on/);
    const [c] = cases(1);
    expect(await pool.verify(c!.publicKey, c!.message, c!.signature)).toBe(true);
  });

  it('close() answers what is queued and in flight, then stops its threads', async () => {
    pool = createVerifyPool({ workers: 2, inline: nodeCryptoBackend });
    const cs = cases(120);
    const answers = Promise.all(cs.map((c) => pool!.verify(c.publicKey, c.message, c.signature)));
    await pool.close();
    expect(await answers).toEqual(cs.map((c) => c.expect));
    expect(pool.workers).toBe(0);
    // After close it still answers, inline.
    const [c] = cases(1);
    expect(await pool.verify(c!.publicKey, c!.message, c!.signature)).toBe(true);
  });

  it('a process using a pool exits on its own, with or without close() (no thread keeps it alive)', async () => {
    assertBuilt();
    const mod = join(ROOT, 'dist/command-center/auth/verify-pool.js');
    const ed = join(ROOT, 'dist/protocol/ed25519.js');
    const run = (closeIt: boolean) =>
      new Promise<{ code: number | null; out: string; ms: number }>((resolve) => {
        const script = `
          const { createVerifyPool } = await import(${JSON.stringify(pathToFileURL(mod).href)});
          const { nodeCryptoBackend } = await import(${JSON.stringify(pathToFileURL(ed).href)});
          const pool = createVerifyPool({ workers: 2, inline: nodeCryptoBackend });
          const seed = new Uint8Array(32).fill(7), msg = new Uint8Array([1, 2, 3]);
          const pub = nodeCryptoBackend.publicKey(seed), sig = nodeCryptoBackend.sign(seed, msg);
          const answers = await Promise.all([pool.verify(pub, msg, sig), pool.verify(pub, new Uint8Array(1), sig)]);
          console.log(JSON.stringify({ answers, workers: pool.workers, onWorkers: pool.stats().onWorkers }));
          ${closeIt ? 'await pool.close();' : ''}
        `;
        const t0 = Date.now();
        const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (out += d));
        const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
        child.on('exit', (code) => {
          clearTimeout(kill);
          resolve({ code, out, ms: Date.now() - t0 });
        });
      });
    for (const closeIt of [true, false]) {
      const r = await run(closeIt);
      expect(r.code, r.out).toBe(0);
      expect(JSON.parse(r.out)).toEqual({ answers: [true, false], workers: 2, onWorkers: 2 });
      expect(r.ms).toBeLessThan(10_000);
    }
  });
});
