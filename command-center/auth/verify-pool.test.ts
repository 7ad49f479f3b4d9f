import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, assertBuilt } from '../../test/process-helpers.js';
import { nodeCryptoBackend } from '../../protocol/ed25519.js';
import { generateKeyPair } from '../../protocol/keys.js';
import { packBatch, unpackBatch } from './verify-batch.js';
import { VERIFY_WORKER_SOURCE, createVerifyPool, verifyWorkerCount, type VerifyPool } from './verify-pool.js';

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

describe('verify batch format', () => {
  it('packs and unpacks items, messages of any length', () => {
    const items = cases(7).map(({ publicKey, message, signature }) => ({ publicKey, message, signature }));
    const back = unpackBatch(packBatch(items));
    expect(back.map((b) => [Buffer.from(b.publicKey), Buffer.from(b.signature), Buffer.from(b.message)])).toEqual(
      items.map((b) => [Buffer.from(b.publicKey), Buffer.from(b.signature), Buffer.from(b.message)]),
    );
    expect(() => unpackBatch(packBatch(items).slice(0, 150))).toThrow(RangeError);
  });
});

describe('verify pool', () => {
  it('auto is min(2, cores - 1); a number is taken as it is', () => {
    expect([1, 2, 4, 16].map((c) => verifyWorkerCount('auto', c))).toEqual([0, 1, 2, 2]);
    expect(verifyWorkerCount(0, 8)).toBe(0);
    expect(verifyWorkerCount(3, 2)).toBe(3);
  });

  it('verifies good signatures and rejects bad ones on its workers, each answer to its own request', async () => {
    // No lag limit here: on a busy test machine a worker may well take longer than 10 ms to start.
    pool = createVerifyPool({ workers: 2, inline: nodeCryptoBackend, maxBatch: 16, maxLagMs: 60_000 });
    const cs = cases(300);
    const answers = await Promise.all(cs.map((c) => pool!.verify(c.publicKey, c.message, c.signature)));
    expect(answers).toEqual(cs.map((c) => c.expect));
    const s = pool.stats();
    expect(s.onWorkers).toBe(300);
    expect(s.inline).toBe(0);
    // Batched: far fewer messages than verifications.
    expect(s.batches).toBeGreaterThanOrEqual(300 / 16);
    expect(s.batches).toBeLessThan(60);
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

  it('with 0 workers, or past saturation, verifies inline', async () => {
    pool = createVerifyPool({ workers: 0, inline: nodeCryptoBackend });
    const cs = cases(30);
    expect(await Promise.all(cs.map((c) => pool!.verify(c.publicKey, c.message, c.signature)))).toEqual(cs.map((c) => c.expect));
    expect(pool.stats()).toMatchObject({ inline: 30, onWorkers: 0 });
    await pool.close();

    pool = createVerifyPool({ workers: 1, inline: nodeCryptoBackend, maxBatch: 8, maxInFlight: 8, maxLagMs: 60_000 });
    const more = cases(100);
    expect(await Promise.all(more.map((c) => pool!.verify(c.publicKey, c.message, c.signature)))).toEqual(more.map((c) => c.expect));
    const s = pool.stats();
    expect(s.onWorkers + s.inline).toBe(100);
    expect(s.onWorkers).toBeGreaterThanOrEqual(8);
    expect(s.inline).toBeGreaterThan(0);
  });

  it('a lagging worker (answers late, e.g. descheduled) is skipped: new checks run inline, its own batch still answers', async () => {
    // The real worker program, with every message handled 300 ms late.
    const slow = `const wt = require('node:worker_threads'); const on = wt.parentPort.on.bind(wt.parentPort);
      wt.parentPort.on = (ev, fn) => on(ev, (m) => setTimeout(() => fn(m), 300));
      { ${VERIFY_WORKER_SOURCE} }`;
    pool = createVerifyPool({ workers: 1, inline: nodeCryptoBackend, maxLagMs: 20, spawn: () => new Worker(slow, { eval: true }) });
    const first = cases(10);
    const t0 = performance.now();
    const firstAnswers = Promise.all(first.map((c) => pool!.verify(c.publicKey, c.message, c.signature)));
    await new Promise((r) => setTimeout(r, 60));
    const second = cases(12);
    expect(await Promise.all(second.map((c) => pool!.verify(c.publicKey, c.message, c.signature)))).toEqual(second.map((c) => c.expect));
    expect(performance.now() - t0).toBeLessThan(250); // did not wait behind the slow batch
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
      spawn: () => {
        const w = new Worker(VERIFY_WORKER_SOURCE, { eval: true });
        spawned.push(w);
        return w;
      },
    });
    const cs = cases(200);
    const inFlight = Promise.all(cs.map((c) => pool!.verify(c.publicKey, c.message, c.signature)));
    await new Promise((r) => setImmediate(r)); // the batch has been posted
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
