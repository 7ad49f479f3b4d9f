/**
 * A real PostgreSQL 15 for benchmarks: `initdb` and `postgres` from Debian's postgresql-15 in a temp dir on a free
 * loopback port (as the `postgres` user when run as root). Unlike the test harness it keeps PostgreSQL's durable
 * defaults (`fsync = on`, `synchronous_commit = on`): the JSONL store it is compared with fdatasyncs every batch.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuSecondsOf } from './proc.mjs';

/** Where initdb and postgres are; VAULTMESH_BENCH_PG_BIN for another install. */
export const PG_BIN = process.env.VAULTMESH_BENCH_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const START_MS = 60_000;
const asRoot = process.getuid?.() === 0;
const wrap = (cmd, args) => (asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]);

/** Why the PostgreSQL benchmarks cannot run here, or undefined when they can. */
export function postgresMissing() {
  for (const bin of ['initdb', 'postgres']) if (!existsSync(join(PG_BIN, bin))) return `${join(PG_BIN, bin)} is missing (apt-get install -y postgresql-15)`;
  if (asRoot && spawnSync('id', ['-u', 'postgres']).status !== 0) return 'running as root but there is no postgres user to run the server as';
  return undefined;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** The pids whose parent is `pid`: a postmaster's backends and workers. */
function childrenOf(pid) {
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

export async function startBenchPostgres({ settings = {}, maxMs = 600_000 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'vm-bench-pg-'));
  const data = join(dir, 'data');
  if (asRoot) {
    const id = (f) => Number(spawnSync('id', [f, 'postgres'], { encoding: 'utf8' }).stdout.trim());
    chownSync(dir, id('-u'), id('-g'));
  }
  const [ic, ia] = wrap(join(PG_BIN, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const init = spawnSync(ic, ia, { encoding: 'utf8', timeout: START_MS });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status}): ${init.stderr || init.error?.message}`);
  }
  const port = await freePort();
  const all = { listen_addresses: '127.0.0.1', unix_socket_directories: dir, max_connections: '100', ...settings };
  const [cmd, args] = wrap(join(PG_BIN, 'postgres'), ['-D', data, '-p', String(port), ...Object.entries(all).flatMap(([k, v]) => ['-c', `${k}=${v}`])]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise((r) => child.once('exit', () => r()));
  const killer = setTimeout(() => child.kill('SIGKILL'), maxMs);
  killer.unref();
  let log = '';
  try {
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`postgres did not start in ${START_MS} ms:\n${log}`)), START_MS);
      exited.then(() => reject(new Error(`postgres exited (${child.exitCode ?? child.signalCode}):\n${log}`)));
      child.stderr.on('data', (d) => {
        log = (log + d).slice(-32_768);
        if (/database system is ready to accept connections/.test(log)) {
          clearTimeout(t);
          resolve();
        }
      });
    });
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  child.stderr.resume();
  const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const pg = (await import('pg')).default;
  let dbs = 0;
  const url = (db) => `postgres://postgres@127.0.0.1:${port}/${db}`;
  return {
    port,
    dir,
    url,
    /** Runs `fn(client)` on a connection to `db`. */
    async query(db, sql, params) {
      const c = new pg.Client({ connectionString: url(db) });
      await c.connect();
      try {
        return (await c.query(sql, params)).rows;
      } finally {
        await c.end();
      }
    },
    async newDatabase() {
      const name = `bench${++dbs}`;
      await this.query('postgres', `CREATE DATABASE ${name}`);
      return name;
    },
    /**
     * Measures the CPU the server's processes (postmaster, backends, walwriter, ...) use between `start()` and
     * `stop()`, in seconds; a backend born in between counts from zero.
     */
    cpuMeter() {
      let at = new Map();
      const sample = () => new Map([pid, ...childrenOf(pid)].map((p) => [p, cpuSecondsOf(p) ?? 0]));
      return {
        start() {
          at = sample();
        },
        stop() {
          let secs = 0;
          for (const [p, s] of sample()) secs += s - (at.get(p) ?? 0);
          return secs;
        },
      };
    },
    async stop() {
      clearTimeout(killer);
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(pid, 'SIGINT'); // fast shutdown
        } catch {
          /* gone */
        }
        const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
