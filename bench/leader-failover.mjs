#!/usr/bin/env node
/**
 * Leader failover on PostgreSQL (run `npm run build` first; needs postgresql-15): two real center processes on one
 * database, the second a follower. Per trial the leader has a signed-but-unsigned-yet command entry (heads every
 * hour, so only a new leader's takeover signs it); we kill -9 the leader and time
 *   - kill → the follower reports role "leader" on /healthz
 *   - kill → the follower serves the new leader's first head (over that entry) on /api/ledger/root
 * p50 over the trials, with the default takeover bound (5 s) and a short one (1 s). The baseline is the bound
 * itself: the ratio says how much of it a takeover uses (≤ 1 plus the head's own time is the design).
 *
 *   node bench/leader-failover.mjs                   # prints a table
 *   VAULTMESH_BENCH_FAILOVER_TRIALS=5                # trials per bound (default 5)
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { startCenterProcess } from './lib/center-process.mjs';
import { enrollViaApi, makeNodes } from './lib/agents.mjs';
import { postgresMissing, startBenchPostgres } from './lib/postgres.mjs';
import { median, round } from './lib/stats.mjs';

const TRIALS = Math.max(1, Math.min(20, Number(process.env.VAULTMESH_BENCH_FAILOVER_TRIALS ?? 5)));

async function until(what, fn, timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const api = async (c, method, path, body) => {
  const res = await request(c.url + path, { method, headers: { authorization: `Bearer ${c.token}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return { status: res.statusCode, json: await res.body.json().catch(() => undefined) };
};
const role = async (c) => (await (await request(`${c.url}/healthz`)).body.json()).role;

async function trial(pg, bound) {
  const url = pg.url(await pg.newDatabase());
  const a = mkdtempSync(join(tmpdir(), 'vm-bench-lead-a-'));
  const b = mkdtempSync(join(tmpdir(), 'vm-bench-lead-b-'));
  const args = ['--store', 'postgres', '--database-url', url, '--leader-takeover-secs', String(bound), '--ledger-head-secs', '3600', '--admin-socket-off', '--auto-approve'];
  let first;
  let second;
  try {
    first = await startCenterProcess(a, args);
    await until('first leads', async () => (await role(first)) === 'leader');
    cpSync(join(a, 'state'), join(b, 'state'), { recursive: true, filter: (s) => !s.endsWith('.sock') && !s.endsWith('.lock') });
    second = await startCenterProcess(b, args); // a replica like the first: it follows because the first leads
    await until('second follows', async () => (await role(second)) === 'follower');
    const [node] = await makeNodes(1, 'fo');
    await enrollViaApi(first.url, first.token, [node], 1);
    const issued = await api(first, 'POST', '/api/commands', { node_id: node.id, action: 'ping' });
    if (issued.status !== 201) throw new Error(`command: ${issued.status} ${JSON.stringify(issued.json)}`);
    await until('the follower applied it', async () => (await api(second, 'GET', '/api/ledger/root')).json.commands.tree_size === 1);
    // A random phase against the follower's retry period, as a real crash would have.
    await new Promise((r) => setTimeout(r, Math.random() * bound * 1000));
    const t0 = performance.now();
    first.child.kill('SIGKILL');
    await first.exited;
    await until('the follower leads', async () => (await role(second)) === 'leader');
    const leadMs = performance.now() - t0;
    await until('the new leader signs', async () => (await api(second, 'GET', '/api/ledger/root')).json.commands.head?.tree_size === 1);
    const headMs = performance.now() - t0;
    return { leadMs, headMs };
  } finally {
    await second?.stop();
    if (first && first.child.exitCode === null && first.child.signalCode === null) first.child.kill('SIGKILL');
    rmSync(a, { recursive: true, force: true });
    rmSync(b, { recursive: true, force: true });
  }
}

export async function run() {
  const missing = postgresMissing();
  if (missing) throw new Error(`not available: ${missing}`);
  const pg = await startBenchPostgres();
  const rows = [];
  try {
    for (const bound of [5, 1]) {
      const lead = [];
      const head = [];
      for (let i = 0; i < TRIALS; i++) {
        const t = await trial(pg, bound);
        lead.push(t.leadMs);
        head.push(t.headMs);
      }
      const what = bound === 5 ? 'default bound 5 s' : `--leader-takeover-secs ${bound}`;
      rows.push({ name: `failover kill -9 → follower leads (${what}), p50 of ${TRIALS}`, value: round(median(lead)), unit: 'ms', baseline: bound * 1000, ratio: round(median(lead) / (bound * 1000), 2), note: `max ${round(Math.max(...lead))} ms; baseline = the takeover bound` });
      rows.push({ name: `failover kill -9 → new leader's first head (${what}), p50 of ${TRIALS}`, value: round(median(head)), unit: 'ms', baseline: bound * 1000, ratio: round(median(head) / (bound * 1000), 2), note: `max ${round(Math.max(...head))} ms`, target: `≤ ${bound * 1000} ms + one head` });
    }
  } finally {
    await pg.stop();
  }
  return rows;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const rows = await run();
  for (const r of rows) console.log(`${r.name}: ${r.value} ${r.unit} (ratio ${r.ratio} of ${r.baseline} ms; ${r.note})`);
}
