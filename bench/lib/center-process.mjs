/**
 * Starts the built command center (dist/command-center/main.js) as a child process on port 0 and stops it.
 * A child is what an operator runs, and it keeps the load generator off the center's event loop.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { memoryOf } from './proc.mjs';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DIST = process.env.VAULTMESH_BENCH_DIST ?? join(ROOT, 'dist');
export const CC_BIN = join(DIST, 'command-center', 'main.js');

/** Imports a built module from dist/, e.g. `dist('protocol/keys.js')`. */
export function dist(path) {
  const file = join(DIST, path);
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first`);
  return import(`file://${file}`);
}

/**
 * Node options for every server a benchmark spawns, from VAULTMESH_BENCH_NODE_ARGS (space-separated), e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile the center during a run (NODE_OPTIONS refuses --cpu-prof).
 */
function extraNodeArgs() {
  return (process.env.VAULTMESH_BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
}

/**
 * Spawns `node <script> ...args` and resolves when it prints "listening on http://..." (both the center and the
 * bare baseline server print that). Killed with SIGKILL after `maxMs` whatever happens.
 */
export async function spawnServer(script, args = [], { env = {}, maxMs = 180_000, startMs = 60_000, nodeArgs = extraNodeArgs() } = {}) {
  const child = spawn(process.execPath, [...nodeArgs, script, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise((r) => child.once('exit', (code, signal) => r(code ?? signal)));
  const killer = setTimeout(() => child.kill('SIGKILL'), maxMs);
  killer.unref();
  const url = await new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`${script} did not start in ${startMs} ms:\n${out}`)), startMs);
    const onData = (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        res(m[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => (out += d));
    child.once('exit', (code) => {
      clearTimeout(t);
      rej(new Error(`${script} exited with ${code}:\n${out.slice(-2000)}`));
    });
  });
  return {
    child,
    pid: child.pid,
    url,
    output: () => out,
    exited,
    memory: () => memoryOf(child.pid),
    async stop() {
      clearTimeout(killer);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/**
 * Benchmarks measure capacity, so the abuse limits (per-IP/identity/node token buckets, SSE streams per identity)
 * are lifted: every simulated agent and SSE client here shares 127.0.0.1 and one admin token.
 */
export const BENCH_ENV = { VAULTMESH_RATE_LIMIT: '0', VAULTMESH_SSE_MAX_PER_IDENTITY: '10000' };

/** Starts vaultmesh-cc with journals in `<dir>/logs` and state in `<dir>/state`; adds its admin token. */
export async function startCenterProcess(dir, args = [], opts = {}) {
  const env = { ...BENCH_ENV, ...opts.env };
  const server = await spawnServer(CC_BIN, ['--port', '0', '--log-dir', join(dir, 'logs'), '--state-dir', join(dir, 'state'), ...args], { ...opts, env });
  const token = readFileSync(join(dir, 'state', 'admin.token'), 'utf8').trim();
  const replayMs = Number(/replayed \d+ envelopes up to seq \d+ in (\d+) ms/.exec(server.output())?.[1] ?? NaN);
  return Object.assign(server, { token, replayMs, logDir: join(dir, 'logs') });
}

/** Reads one Prometheus histogram's mean (sum / count) from /metrics text. */
export function histogramMean(metricsText, name) {
  const sum = Number(new RegExp(`^${name}_sum(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(metricsText)?.[1]);
  const count = Number(new RegExp(`^${name}_count(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(metricsText)?.[1]);
  return count > 0 ? { mean: sum / count, count } : undefined;
}

/** One unlabelled or labelled sample's value from /metrics text, e.g. `metricValue(t, 'x_total', '{where="worker"}')`. */
export function metricValue(metricsText, name, labels = '') {
  const esc = (x) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return Number(new RegExp(`^${esc(name)}${esc(labels)} (\\S+)$`, 'm').exec(metricsText)?.[1] ?? NaN);
}

/** A row for where the center's signature checks ran (verify-pool.ts); undefined for a center without the metrics. */
export function signatureChecksRow(metricsText) {
  const onWorkers = metricValue(metricsText, 'vaultmesh_signature_checks_total', '{where="worker"}');
  const inline = metricValue(metricsText, 'vaultmesh_signature_checks_total', '{where="inline"}');
  if (!Number.isFinite(onWorkers)) return undefined;
  const batches = metricValue(metricsText, 'vaultmesh_signature_check_batches_total');
  const workers = metricValue(metricsText, 'vaultmesh_signature_workers');
  const share = onWorkers + inline > 0 ? (100 * onWorkers) / (onWorkers + inline) : 0;
  return {
    name: 'signature checks on worker threads',
    value: +share.toFixed(1),
    unit: '%',
    note: `${workers} worker(s); mean ${batches > 0 ? (onWorkers / batches).toFixed(1) : 'n/a'} checks per batch; ${inline} inline`,
  };
}
