#!/usr/bin/env node
/**
 * Single executables against `node dist/...`: file size, and start-up time of each program (`--version`, spawn to
 * exit) and of the center (spawn to "listening on"), median of N runs, alternating so that load on the machine
 * falls on both alike. Also the esbuild bundle run by plain node, which tells the bundle's share of the difference
 * from the SEA's (code cache, no module resolution).
 *
 *   npm run build && node scripts/build-sea.mjs && node bench/sea.mjs     # VAULTMESH_BENCH_SEA_RUNS=15
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
const RUNS = Number(process.env.VAULTMESH_BENCH_SEA_RUNS ?? 15);
const PROGRAMS = { 'vaultmesh-agent': 'dist/node-agent/main.js', 'vaultmesh-cc': 'dist/command-center/main.js', vaultmesh: 'dist/cli/main.js' };

function timeToExit(cmd, args) {
  return new Promise((res, rej) => {
    const t0 = process.hrtime.bigint();
    const c = spawn(cmd, args, { stdio: 'ignore', env: { PATH: process.env.PATH } });
    c.once('error', rej);
    c.once('exit', (code) => (code === 0 ? res(Number(process.hrtime.bigint() - t0) / 1e6) : rej(new Error(`${cmd} exited ${code}`))));
  });
}

function timeToListen(cmd, args) {
  const dir = mkdtempSync(join(tmpdir(), 'vm-bench-sea-'));
  return new Promise((res, rej) => {
    const t0 = process.hrtime.bigint();
    const c = spawn(cmd, [...args, '--port', '0', '--log-dir', join(dir, 'logs'), '--state-dir', join(dir, 'state')], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } });
    let out = '';
    c.stdout.on('data', (d) => {
      out += d;
      if (/listening on http/.test(out)) {
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        c.once('exit', () => {
          rmSync(dir, { recursive: true, force: true });
          res(ms);
        });
        c.kill('SIGTERM');
      }
    });
    c.once('error', rej);
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run() {
  const sea = join(ROOT, 'dist/sea');
  if (!existsSync(join(sea, 'vaultmesh-agent'))) throw new Error('dist/sea/ is missing: node scripts/build-sea.mjs');
  const rows = [];
  for (const [name, entry] of Object.entries(PROGRAMS)) {
    const variants = { sea: [join(sea, name), []], node: [process.execPath, [join(ROOT, entry)]], bundle: [process.execPath, [join(sea, `${name}.cjs`)]] };
    const times = { sea: [], node: [], bundle: [] };
    for (let i = 0; i < RUNS; i++) for (const [k, [cmd, args]] of Object.entries(variants)) times[k].push(await timeToExit(cmd, [...args, '--version']));
    rows.push({ name, what: '--version', sea: median(times.sea), node: median(times.node), bundle: median(times.bundle), bytes: statSync(join(sea, name)).size });
  }
  const variants = { sea: [join(sea, 'vaultmesh-cc'), []], node: [process.execPath, [join(ROOT, PROGRAMS['vaultmesh-cc'])]], bundle: [process.execPath, [join(sea, 'vaultmesh-cc.cjs')]] };
  const times = { sea: [], node: [], bundle: [] };
  for (let i = 0; i < RUNS; i++) for (const [k, [cmd, args]] of Object.entries(variants)) times[k].push(await timeToListen(cmd, args));
  rows.push({ name: 'vaultmesh-cc', what: 'start → listening', sea: median(times.sea), node: median(times.node), bundle: median(times.bundle) });
  return rows;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const rows = await run();
  console.log(`median of ${RUNS} runs, ms\n`);
  console.log('| program | measure | single executable | node dist/… | node bundle.cjs | SEA size |');
  console.log('|---|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.name} | ${r.what} | ${r.sea.toFixed(0)} | ${r.node.toFixed(0)} | ${r.bundle.toFixed(0)} | ${r.bytes ? `${(r.bytes / 1048576).toFixed(1)} MiB` : ''} |`);
}
