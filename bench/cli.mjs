#!/usr/bin/env node
/**
 * `vaultmesh` start-up (run `npm run build` first): wall time from spawn to exit of `vaultmesh --help` and of
 * `vaultmesh nodes list`, against the same CLI with every command module imported up front, which is what
 * cli/main.ts did before the command table (cli/command-table.ts): the baseline runs
 * `node --import <every dist/cli/commands/*.js, and undici> dist/cli/main.unbundled.js ...` (tsc's output module by
 * module, as every build ran before dist/cli/main.js became a bundle, scripts/bundle-cli.mjs), the same code plus the eager
 * imports (undici too: the API client loaded it until cli/http-request.ts replaced it), in the same run,
 * interleaved with ours. VAULTMESH_BENCH_CLI_BASELINE_DIST=<another build's dist/> (e.g. main's) adds rows timed
 * against that build's own `cli/main.js` directly. `nodes list` asks a real center (a child process with an empty fleet) over TCP,
 * so what is timed is start-up, loading its module and one API round trip, in both cases. A bare `node -e ''` is
 * reported as the floor no CLI start-up can go below.
 *
 *   node bench/cli.mjs                 # prints a table; VAULTMESH_BENCH_CLI_RUNS (default 15) runs per case
 *   import { run } from './bench/cli.mjs'
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { DIST, ROOT, startCenterProcess } from './lib/center-process.mjs';
import { median, round } from './lib/stats.mjs';

const RUNS = Number(process.env.VAULTMESH_BENCH_CLI_RUNS ?? 15);
const MAX_MS = 60_000;

function timeOnce(args) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 20_000 });
  const ms = performance.now() - t0;
  return { ms, status: r.status, stderr: r.stderr };
}

export async function run({ log = () => {} } = {}) {
  const main = join(DIST, 'cli/main.js');
  // The baseline runs tsc's output module by module, as before the CLI was bundled (scripts/bundle-cli.mjs keeps
  // it as main.unbundled.js; a build without the bundle step has it as main.js).
  const unbundledMain = existsSync(join(DIST, 'cli/main.unbundled.js')) ? join(DIST, 'cli/main.unbundled.js') : main;
  const commandsDir = join(DIST, 'cli/commands');
  const modules = readdirSync(commandsDir).filter((f) => f.endsWith('.js'));
  const tmp = mkdtempSync(join(tmpdir(), 'vm-bench-cli-'));
  let center;
  try {
    center = await startCenterProcess(tmp, [], { maxMs: 120_000 });
    const eager = join(tmp, 'eager.mjs');
    const undici = createRequire(join(ROOT, 'package.json')).resolve('undici');
    writeFileSync(eager, [...modules.map((f) => pathToFileURL(join(commandsDir, f)).href), pathToFileURL(undici).href].map((u) => `import ${JSON.stringify(u)};`).join('\n') + '\n');
    const otherMain = process.env.VAULTMESH_BENCH_CLI_BASELINE_DIST ? join(process.env.VAULTMESH_BENCH_CLI_BASELINE_DIST, 'cli/main.js') : undefined;
    const nodesList = ['nodes', 'list', '--cc-url', center.url, '--token', center.token, '--admin-socket-off'];
    const cases = {
      bare: ['-e', ''],
      help: [main, '--help'],
      helpEager: ['--import', pathToFileURL(eager).href, unbundledMain, '--help'],
      nodes: [main, ...nodesList],
      nodesEager: ['--import', pathToFileURL(eager).href, unbundledMain, ...nodesList],
      ...(otherMain ? { helpOther: [otherMain, '--help'], nodesOther: [otherMain, ...nodesList] } : {}),
    };
    // Every case must succeed, or the times would compare failures.
    for (const [name, args] of Object.entries(cases)) {
      const r = timeOnce(args);
      if (r.status !== 0) throw new Error(`${name}: exit ${r.status}: ${r.stderr.slice(-300)}`);
    }
    const times = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
    const started = Date.now();
    for (let i = 0; i < RUNS && Date.now() - started < MAX_MS; i++) {
      // Interleaved, so drift in the machine's load hits every case alike.
      for (const [name, args] of Object.entries(cases)) times[name].push(timeOnce(args).ms);
    }
    const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
    const n = times.bare.length;
    log(`medians over ${n} runs: ${JSON.stringify(Object.fromEntries(Object.entries(m).map(([k, v]) => [k, round(v, 0)])))}`);
    const note = `median of ${n}; baseline: the same CLI, tsc's output module by module, with all ${modules.length} command modules and undici imported up front (the old main.ts)`;
    const other = otherMain
      ? [
          { name: `vaultmesh --help vs ${otherMain}`, value: round(m.help, 0), unit: 'ms', baseline: round(m.helpOther, 0), ratio: round(m.help / m.helpOther, 2), target: '≤ 0.5×', note: `median of ${n}` },
          { name: `vaultmesh nodes list vs ${otherMain}`, value: round(m.nodes, 0), unit: 'ms', baseline: round(m.nodesOther, 0), ratio: round(m.nodes / m.nodesOther, 2), target: '≤ 0.5×', note: `median of ${n}` },
        ]
      : [];
    return [
      ...other,
      { name: 'vaultmesh --help: start-up to exit', value: round(m.help, 0), unit: 'ms', baseline: round(m.helpEager, 0), ratio: round(m.help / m.helpEager, 2), target: '≤ 0.5×', note },
      { name: 'vaultmesh nodes list (a real center, empty fleet): start-up to exit', value: round(m.nodes, 0), unit: 'ms', baseline: round(m.nodesEager, 0), ratio: round(m.nodes / m.nodesEager, 2), target: '≤ 0.5×', note },
      { name: "bare node -e '' (the floor)", value: round(m.bare, 0), unit: 'ms', note: `--help above the floor: ${round(m.help - m.bare, 0)} ms now, ${round(m.helpEager - m.bare, 0)} ms with every module` },
    ];
  } finally {
    await center?.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { printRows } = await import('./ingest.mjs');
  printRows(await run({ log: (m) => console.error(m) }));
}
