#!/usr/bin/env node
/**
 * PostgreSQL store benchmark (run `npm run build` first; it runs dist/), against a real PostgreSQL 15 on loopback
 * with its durable defaults (fsync on, synchronous_commit on), the JSONL store (fsync=batch) as the baseline in
 * the same run:
 *  - ingest: signed durable heartbeats per second through real center processes, the generator and pre-signed
 *    requests of bench/ingest.mjs (200 enrolled nodes, 64 in flight), `--store postgres` vs JSONL measured
 *    alternately; latency p50/p99; CPU per acknowledged heartbeat in the center and in PostgreSQL; bytes per
 *    heartbeat in the JSONL file, in the table (with its indexes) and in the WAL, the inputs of docs/SCALING.md's
 *    sizing.
 *  - replicas: VAULTMESH_BENCH_PG_REPLICAS=N (default 1; bench/run.mjs runs 3) also runs N centers on the one
 *    database, every one taking writes, and spreads the agents over them (node k → replica k mod N), against 1
 *    replica in the same run. Replicas 2..N start with VAULTMESH_BENCH_PG_REPLICA_ARGS (default none). A replica
 *    that refuses a probe heartbeat makes the row "not available" with the answer it gave.
 *  - start-up: the log of bench/replay.mjs (VAULTMESH_BENCH_PG_REPLAY_LINES heartbeats, default 1,000,000, from
 *    10,000 nodes) copied into PostgreSQL with `vaultmesh store copy`, then the center's start-up (replay until
 *    it listens) from PostgreSQL vs from the JSONL files.
 * Without postgresql-15 every row says "not available" and why.
 *
 *   node bench/postgres.mjs                      # prints a table
 *   import { run } from './bench/postgres.mjs'   # rows { name, value, unit, baseline?, ratio?, note? }
 */
import { spawn } from 'node:child_process';
import { copyFileSync, cpSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { enrollViaApi, makeNodes, presignHeartbeats, protocol } from './lib/agents.mjs';
import { DIST, startCenterProcess } from './lib/center-process.mjs';
import { closedLoop } from './lib/load.mjs';
import { cpuSecondsOf } from './lib/proc.mjs';
import { postgresMissing, startBenchPostgres } from './lib/postgres.mjs';
import { REPLAY_JOURNALS, ensureReplayLog } from './lib/replay-log.mjs';
import { quantile, round } from './lib/stats.mjs';

const SECS = Number(process.env.VAULTMESH_BENCH_PG_SECS ?? 8);
const NODES = Number(process.env.VAULTMESH_BENCH_PG_NODES ?? 200);
const REPLICAS = Math.max(1, Number(process.env.VAULTMESH_BENCH_PG_REPLICAS ?? 1));
const REPLICA_ARGS = (process.env.VAULTMESH_BENCH_PG_REPLICA_ARGS ?? '').split(' ').filter(Boolean);
const REPLAY_LINES = Number(process.env.VAULTMESH_BENCH_PG_REPLAY_LINES ?? 1_000_000);
const REPLAY_NODES = 10_000;
const ROUNDS = 2;
const CONCURRENCY = 64;
const CLI_BIN = join(DIST, 'cli', 'main.js');
const START_MS = 170_000;

const notAvailable = (name, reason) => ({ name, value: 'not available', unit: '', note: reason });

/** Closed loops against several centers at once, each with its share of the requests; merged like one. */
async function spreadLoop(urls, parts, opts) {
  const per = Math.max(1, Math.floor(opts.concurrency / urls.length));
  const res = await Promise.all(urls.map((u, i) => closedLoop(u, parts[i], { ...opts, concurrency: per, connections: per })));
  const secs = Math.max(...res.map((r) => r.secs));
  const ok = res.reduce((a, r) => a + r.ok, 0);
  const statuses = {};
  for (const r of res) for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
  return { ok, secs, rate: ok / secs, latencies: res.flatMap((r) => r.latencies), statuses, errors: res.reduce((a, r) => a + r.errors, 0), sentBy: res.map((r) => r.sent) };
}

function merge(results) {
  const ok = results.reduce((a, r) => a + r.ok, 0);
  const secs = results.reduce((a, r) => a + r.secs, 0);
  const statuses = {};
  for (const r of results) for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
  return { ok, secs, rate: ok / secs, latencies: results.flatMap((r) => r.latencies), statuses };
}

/** Sends one signed request and returns `{ status, text }` (to learn why a replica refuses). */
async function probe(url, req) {
  const res = await request(url + req.path, { method: req.method, headers: req.headers, body: req.body });
  return { status: res.statusCode, text: await res.body.text() };
}

/** Waits (at most 30 s) until every replica's /healthz seq is the same, and unchanged for 200 ms. */
async function waitForTails(centers) {
  const end = Date.now() + 30_000;
  let last = '';
  while (Date.now() < end) {
    const seqs = await Promise.all(centers.map(async (c) => (await (await request(`${c.url}/healthz`)).body.json()).seq));
    const now = seqs.join(',');
    if (new Set(seqs).size === 1 && now === last) return;
    last = now;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Copies a center's state dir (key, admin token) for another center: replicas and start-ups share the key. */
const copyState = (from, to) => cpSync(from, to, { recursive: true, filter: (src) => !src.endsWith('.sock') && !src.endsWith('.lock') });

async function ingestRows(pg, log) {
  const rows = [];
  const root = mkdtempSync(join(tmpdir(), 'vm-bench-pg-ingest-'));
  const centers = [];
  try {
    const db = await pg.newDatabase();
    const pgEnv = { VAULTMESH_DATABASE_URL: pg.url(db) };
    const jsonl = await startCenterProcess(join(root, 'jsonl'), ['--auto-approve'], { maxMs: START_MS });
    centers.push(jsonl);
    const primary = await startCenterProcess(join(root, 'pg-1'), ['--auto-approve', '--store', 'postgres'], { maxMs: START_MS, env: pgEnv });
    centers.push(primary);
    const replicas = [primary];
    let spreadRefused;
    for (let r = 2; r <= REPLICAS && !spreadRefused; r++) {
      const dir = join(root, `pg-${r}`);
      copyState(join(root, 'pg-1', 'state'), join(dir, 'state'));
      try {
        const c = await startCenterProcess(dir, ['--auto-approve', '--store', 'postgres', ...REPLICA_ARGS], { maxMs: START_MS, env: pgEnv });
        centers.push(c);
        replicas.push(c);
      } catch (err) {
        // The center's own message is the last line it printed.
        const lines = String(err?.message ?? err).split('\n').filter((l) => l.trim());
        spreadRefused = `replica ${r} did not start: ${lines[lines.length - 1]?.trim().slice(0, 240)}`;
      }
    }
    const nodes = await makeNodes(NODES, 'pgi');
    await enrollViaApi(jsonl.url, jsonl.token, nodes);
    await enrollViaApi(primary.url, primary.token, nodes);
    log(`enrolled ${NODES} nodes on JSONL and on PostgreSQL (${REPLICAS} replica${REPLICAS > 1 ? 's' : ''})`);

    // One pre-signed request serves each center once (nonces are single-use per center, and these are separate).
    const p = await protocol();
    const perRound = Math.round(SECS * 4000);
    const { requests, signMs } = presignHeartbeats(p, nodes, 1000 + perRound * ROUNDS, { maxMs: 20_000 });
    log(`pre-signed ${requests.length} heartbeats in ${signMs.toFixed(0)} ms`);
    const warm = requests.slice(0, 500);
    const pool = requests.slice(500);
    await closedLoop(jsonl.url, warm, { concurrency: 16, connections: 16 });
    await closedLoop(primary.url, warm, { concurrency: 16, connections: 16 });

    // N replicas: does every replica take writes? Asked with the last requests of the pool, kept out of the rounds,
    // once the replicas' tails applied the enrollments and the warm-up (a node a replica has not seen yet is a 401).
    if (REPLICAS > 1 && !spreadRefused) {
      await waitForTails(replicas);
      for (let r = 1; r < REPLICAS && !spreadRefused; r++) {
        const a = await probe(replicas[r].url, pool[pool.length - r]);
        if (a.status !== 200) spreadRefused = `replica ${r + 1} answered ${a.status} ${a.text.slice(0, 160)}`;
      }
    }
    // The spread rounds need requests the database has never seen (nonces and heartbeat ids are the log's, not one
    // replica's, once replicas share it): with N > 1 the pool is halved, the second half for the spread.
    const rest = pool.slice(0, pool.length - REPLICAS);
    const half = REPLICAS > 1 ? Math.floor(rest.length / 2) : rest.length;
    const usable = rest.slice(0, half);
    const spreadPool = rest.slice(half);
    const parts = Array.from({ length: REPLICAS }, (_, r) => spreadPool.filter((_, i) => (i % NODES) % REPLICAS === r));

    const walLsn = async () => (await pg.query(db, 'SELECT pg_current_wal_lsn()::text AS lsn'))[0].lsn;
    const walBytes = async (a, b) => Number((await pg.query(db, 'SELECT pg_wal_lsn_diff($1, $2)::bigint AS d', [b, a]))[0].d);
    const jj = [];
    const pp = [];
    const nn = [];
    let usedJ = 0;
    let usedP = 0;
    const usedBy = parts.map(() => 0);
    let wal = 0;
    const cpuDb = pg.cpuMeter();
    let cpuJs = 0;
    let cpuPs = 0;
    let cpuDbs = 0;
    for (let r = 0; r < ROUNDS; r++) {
      const cj = cpuSecondsOf(jsonl.pid);
      const j = await closedLoop(jsonl.url, usable.slice(usedJ), { concurrency: CONCURRENCY, connections: CONCURRENCY, maxMs: SECS * 1000 });
      cpuJs += cpuSecondsOf(jsonl.pid) - cj;
      usedJ += j.sent;
      jj.push(j);
      log(`JSONL round ${r + 1}: ${j.rate.toFixed(0)}/s, statuses ${JSON.stringify(j.statuses)}`);
      const lsn0 = await walLsn();
      const cp = cpuSecondsOf(primary.pid);
      cpuDb.start();
      const q = await closedLoop(primary.url, usable.slice(usedP), { concurrency: CONCURRENCY, connections: CONCURRENCY, maxMs: SECS * 1000 });
      cpuPs += cpuSecondsOf(primary.pid) - cp;
      cpuDbs += cpuDb.stop();
      wal += await walBytes(lsn0, await walLsn());
      usedP += q.sent;
      pp.push(q);
      log(`PostgreSQL round ${r + 1}: ${q.rate.toFixed(0)}/s, statuses ${JSON.stringify(q.statuses)}`);
      if (REPLICAS > 1 && !spreadRefused) {
        const n = await spreadLoop(
          replicas.map((c) => c.url),
          parts.map((part, i) => part.slice(usedBy[i])),
          { concurrency: CONCURRENCY, maxMs: SECS * 1000 },
        );
        n.sentBy.forEach((k, i) => (usedBy[i] += k));
        nn.push(n);
        log(`PostgreSQL ×${REPLICAS} round ${r + 1}: ${n.rate.toFixed(0)}/s, statuses ${JSON.stringify(n.statuses)}`);
      }
    }
    const J = merge(jj);
    const P = merge(pp);
    const exhausted = usedJ >= usable.length || usedP >= usable.length;
    rows.push({
      name: `PostgreSQL ingest: signed durable heartbeats/s (${NODES} nodes, ${CONCURRENCY} in flight, 1 replica)`,
      value: Math.round(P.rate),
      unit: 'req/s',
      baseline: Math.round(J.rate),
      ratio: round(P.rate / J.rate, 2),
      note: `baseline: the JSONL store (fsync batch), same requests, alternating rounds${exhausted ? '; pre-signed pool ran out, so a rate is a lower bound' : ''}`,
    });
    for (const [name, X] of [['PostgreSQL', P], ['JSONL', J]]) {
      const bad = Object.entries(X.statuses).filter(([s]) => s !== '200');
      if (bad.length) rows.push({ name: `${name} ingest: non-200 answers`, value: JSON.stringify(Object.fromEntries(bad)), unit: '' });
    }
    rows.push({ name: 'PostgreSQL ingest latency p50', value: round(quantile(P.latencies, 0.5), 1), unit: 'ms', baseline: round(quantile(J.latencies, 0.5), 1), note: 'baseline: JSONL' });
    rows.push({ name: 'PostgreSQL ingest latency p99', value: round(quantile(P.latencies, 0.99), 1), unit: 'ms', baseline: round(quantile(J.latencies, 0.99), 1), note: 'baseline: JSONL' });
    const perReq = (cpuS, n) => round((cpuS * 1e6) / n, 0);
    rows.push({ name: 'center CPU per acknowledged heartbeat (PostgreSQL store)', value: perReq(cpuPs, P.ok), unit: 'µs', baseline: perReq(cpuJs, J.ok), note: 'baseline: the JSONL store; CPU time of the center process' });
    rows.push({ name: 'PostgreSQL server CPU per acknowledged heartbeat', value: perReq(cpuDbs, P.ok), unit: 'µs', note: 'postmaster + backends + WAL writer, same rounds' });
    if (REPLICAS > 1) {
      if (spreadRefused) rows.push(notAvailable(`PostgreSQL ingest over ${REPLICAS} replicas (agents spread)`, `${spreadRefused}${REPLICA_ARGS.length ? `; replicas 2..${REPLICAS} ran with ${REPLICA_ARGS.join(' ')}` : ''}`));
      else {
        const N = merge(nn);
        const ranOut = usedBy.some((k, i) => k >= parts[i].length);
        rows.push({
          name: `PostgreSQL ingest over ${REPLICAS} replicas (agents spread)`,
          value: Math.round(N.rate),
          unit: 'req/s',
          baseline: Math.round(P.rate),
          ratio: round(N.rate / P.rate, 2),
          note: `baseline: 1 replica; p50 ${round(quantile(N.latencies, 0.5), 1)} ms, p99 ${round(quantile(N.latencies, 0.99), 1)} ms; statuses ${JSON.stringify(N.statuses)}${ranOut ? '; pre-signed pool ran out, so the rate is a lower bound' : ''}`,
        });
      }
    }

    // Sizes per heartbeat: the JSONL line, the table row with its indexes, the WAL (what replication ships).
    const hbFile = join(root, 'jsonl', 'logs', 'heartbeats.jsonl');
    const hbLines = readFileSync(hbFile, 'utf8').split('\n').filter(Boolean).length;
    const jsonlPerHb = statSync(hbFile).size / hbLines;
    const [sz] = await pg.query(db, "SELECT count(*)::bigint AS n, pg_total_relation_size('envelopes')::bigint AS total, (SELECT avg(octet_length(line)) FROM envelopes WHERE kind = 'heartbeat')::float AS line FROM envelopes");
    rows.push({ name: 'heartbeat envelope size (canonical line)', value: round(Number(sz.line), 0), unit: 'B', baseline: round(jsonlPerHb, 0), note: `baseline: bytes per line in heartbeats.jsonl (${hbLines} lines)` });
    rows.push({ name: 'PostgreSQL bytes per envelope (table + indexes + TOAST)', value: round(Number(sz.total) / Number(sz.n), 0), unit: 'B', baseline: round(jsonlPerHb, 0), ratio: round(Number(sz.total) / Number(sz.n) / jsonlPerHb, 2), note: `baseline: JSONL bytes per heartbeat; ${sz.n} rows` });
    rows.push({ name: 'WAL per acknowledged heartbeat (what a standby receives)', value: round(wal / P.ok, 0), unit: 'B', note: `${round(wal / 1e6, 1)} MB of WAL for ${P.ok} heartbeats` });
  } finally {
    for (const c of centers.reverse()) await c.stop().catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  }
  return rows;
}

function runCli(args, maxMs) {
  return new Promise((res, rej) => {
    const c = spawn(process.execPath, [CLI_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (out += d));
    const t = setTimeout(() => c.kill('SIGKILL'), maxMs);
    c.on('exit', (code) => {
      clearTimeout(t);
      if (code === 0) res(out);
      else rej(new Error(`vaultmesh ${args.slice(0, 2).join(' ')} exited with ${code}: ${out.slice(-500)}`));
    });
  });
}

/** Time from spawn to "listening", and the replay time the center logs, from a center on `dir` with `args`. */
async function startup(dir, args, env) {
  const t0 = performance.now();
  // The attention monitor might journal staleness for these old heartbeats: keep it out of the timed start.
  const c = await startCenterProcess(dir, args, { maxMs: START_MS, startMs: START_MS - 10_000, env: { VAULTMESH_ATTENTION_CHECK_SECS: '3600', ...env } });
  const ms = performance.now() - t0;
  const rssMb = c.memory().rssMb;
  await c.stop();
  return { ms, replayMs: c.replayMs, rssMb };
}

async function startupRows(pg, log) {
  const rows = [];
  const { dir: src, generated } = await ensureReplayLog({ lines: REPLAY_LINES, nodes: REPLAY_NODES, log });
  const bytes = REPLAY_JOURNALS.reduce((a, f) => a + statSync(join(src, f)).size, 0);
  const total = REPLAY_LINES + REPLAY_NODES;
  const what = `${total.toLocaleString('en-US')} envelopes, ${round(bytes / 1e6, 0)} MB of JSONL`;
  const root = mkdtempSync(join(tmpdir(), 'vm-bench-pg-startup-'));
  try {
    // A center key for both start-ups: a center refuses to start on an existing log without one.
    await (await startCenterProcess(join(root, 'seed'), [], { maxMs: 60_000 })).stop();
    mkdirSync(join(root, 'jsonl', 'logs'), { recursive: true });
    copyState(join(root, 'seed', 'state'), join(root, 'jsonl', 'state'));
    copyState(join(root, 'seed', 'state'), join(root, 'pg', 'state'));
    copyFileSync(join(src, 'events.jsonl'), join(root, 'jsonl', 'logs', 'events.jsonl'));
    try {
      linkSync(join(src, 'heartbeats.jsonl'), join(root, 'jsonl', 'logs', 'heartbeats.jsonl'));
    } catch {
      copyFileSync(join(src, 'heartbeats.jsonl'), join(root, 'jsonl', 'logs', 'heartbeats.jsonl'));
    }

    const db = await pg.newDatabase();
    const c0 = performance.now();
    await runCli(['store', 'copy', '--from', src, '--to', pg.url(db)], START_MS);
    const copyMs = performance.now() - c0;
    const [size] = await pg.query(db, 'SELECT pg_database_size(current_database())::bigint AS b');
    log(`copied ${what} into PostgreSQL in ${copyMs.toFixed(0)} ms`);
    rows.push({ name: `vaultmesh store copy JSONL → PostgreSQL (${what})`, value: round(copyMs / 1000, 1), unit: 's', note: `${round(bytes / 1e6 / (copyMs / 1000), 1)} MB/s; database ${round(Number(size.b) / 1e6, 0)} MB after the copy (JSONL ${round(bytes / 1e6, 0)} MB)${generated ? '; log generated in this run' : ''}` });

    // JSONL first, then PostgreSQL: each one start, the log cold for neither (the copy just read both).
    const j = await startup(join(root, 'jsonl'), []);
    const p = await startup(join(root, 'pg'), ['--store', 'postgres'], { VAULTMESH_DATABASE_URL: pg.url(db) });
    log(`start-up: JSONL ${j.ms.toFixed(0)} ms (replay ${j.replayMs} ms), PostgreSQL ${p.ms.toFixed(0)} ms (replay ${p.replayMs} ms)`);
    rows.push({
      name: `center start-up from PostgreSQL (${what})`,
      value: round(p.ms / 1000, 1),
      unit: 's',
      baseline: round(j.ms / 1000, 1),
      ratio: round(j.ms / p.ms, 2),
      note: `until it listens; baseline: the same log as JSONL files; ratio = JSONL time / PostgreSQL time; replay ${round(p.replayMs / 1000, 1)} s vs ${round(j.replayMs / 1000, 1)} s${REPLAY_LINES < 1_000_000 ? `; VAULTMESH_BENCH_PG_REPLAY_LINES=${REPLAY_LINES}, not 1M` : ''}`,
    });
    rows.push({ name: 'center RSS after start-up from PostgreSQL', value: round(p.rssMb, 0), unit: 'MB', baseline: round(j.rssMb, 0), note: 'baseline: from JSONL' });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return rows;
}

export async function run({ log = () => {} } = {}) {
  const missing = postgresMissing();
  if (missing) return [notAvailable('PostgreSQL store: ingest and start-up vs JSONL', missing)];
  const pg = await startBenchPostgres();
  try {
    const rows = await ingestRows(pg, log);
    try {
      rows.push(...(await startupRows(pg, log)));
    } catch (err) {
      rows.push(notAvailable('center start-up from PostgreSQL vs JSONL', String(err?.message ?? err).slice(0, 300)));
    }
    return rows;
  } finally {
    await pg.stop();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { printRows } = await import('./ingest.mjs');
  printRows(await run({ log: (m) => console.error(m) }));
}
