/**
 * A real PostgreSQL 15 for one test file: `initdb` and `postgres` from Debian's postgresql-15 in a temp dir, on a
 * free loopback port, its unix socket in the temp dir. As root the server runs as the `postgres` user (through
 * `runuser`), which owns the temp dir. `stop()` ends it and removes the dir; a process exit ends it too, so a failing
 * or interrupted file leaves no server behind.
 *
 * `standbyOf` makes the server a streaming standby of another (test/postgres-replication.ts builds a primary with a
 * synchronous standby from two of these).
 *
 * Suites guard themselves with `requirePostgres(suite)`: under CI a missing postgresql-15 fails the run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { requirePart } from './required-part.js';

export const PG_BIN = '/usr/lib/postgresql/15/bin';
const START_TIMEOUT_MS = 30_000;

export function postgresPresent(): boolean {
  return existsSync(join(PG_BIN, 'initdb')) && existsSync(join(PG_BIN, 'postgres'));
}

/** Whether the suite can run; see test/required-part.ts. */
export function requirePostgres(suite: string): boolean {
  return requirePart({ name: 'PostgreSQL 15 (/usr/lib/postgresql/15/bin)', present: postgresPresent(), install: 'apt-get install -y postgresql-15', suite });
}

export interface TestPostgres {
  port: number;
  dir: string;
  /** A URL to the `postgres` database (superuser, trust auth on loopback). */
  url: string;
  /** A fresh empty database for one test; its URL. */
  newDatabase(): Promise<string>;
  /** The postmaster's pid (not runuser's). */
  pid: number;
  /**
   * SIGKILL the postmaster. Its backends notice and exit on their own; with `backends` they are killed too, in the
   * same instant, as when the machine is lost (no backend gets to finish anything).
   */
  kill9(opts?: { backends?: boolean }): Promise<void>;
  /** Start it again on the same dir and port (after kill9 or stop({ keep: true })). */
  restart(): Promise<void>;
  /** Fast shutdown; removes the dir unless `keep`. */
  stop(opts?: { keep?: boolean }): Promise<void>;
}

const asRoot = process.getuid?.() === 0;
const wrap = (cmd: string, args: string[]): [string, string[]] => (asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

const live = new Set<ChildProcess>();
const dirs = new Set<string>();
let exitHook = false;
function killAllOnExit(): void {
  if (exitHook) return;
  exitHook = true;
  // Synchronous last resort: a test file that throws past its afterAll must not leave a postmaster running.
  process.on('exit', () => {
    for (const child of live) {
      const pid = (child as ChildProcess & { postmasterPid?: number }).postmasterPid;
      try {
        if (pid) process.kill(pid, 'SIGKILL');
        child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
}

export interface StartOptions {
  /** `-c` settings over the harness's defaults. */
  settings?: Record<string, string>;
  /**
   * Make this server a streaming standby of the one on `port` (loopback): its data dir is a `pg_basebackup` of that
   * server, with `standby.signal`; it connects as `application_name = name`, which is what the primary's
   * `synchronous_standby_names` lists.
   */
  standbyOf?: { port: number; name: string };
}

export async function startPostgres(opts: StartOptions = {}): Promise<TestPostgres> {
  killAllOnExit();
  const dir = mkdtempSync(join(tmpdir(), 'vm-pg-'));
  const data = join(dir, 'data');
  dirs.add(dir);
  if (asRoot) chownSync(dir, pgUid(), pgGid());
  // A standby starts from a base backup of its primary (-R writes standby.signal); a primary from initdb.
  const [initCmd, initArgs] = opts.standbyOf
    ? wrap(join(PG_BIN, 'pg_basebackup'), ['-h', '127.0.0.1', '-p', String(opts.standbyOf.port), '-U', 'postgres', '-D', data, '-R', '-X', 'stream', '--no-sync', '-c', 'fast'])
    : wrap(join(PG_BIN, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  // Not spawnSync: a base backup may stream through a proxy that lives on this process's event loop.
  const init = await runTool(initCmd, initArgs, START_TIMEOUT_MS);
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${opts.standbyOf ? 'pg_basebackup' : 'initdb'} failed (${init.status}): ${init.stderr || init.error?.message}`);
  }
  const port = await freePort();
  // fsync off: these tests kill processes, not machines; the page cache survives a killed postmaster.
  const settings: Record<string, string> = { listen_addresses: '127.0.0.1', unix_socket_directories: dir, fsync: 'off', max_connections: '100', ...opts.settings };
  if (opts.standbyOf) settings.primary_conninfo = `host=127.0.0.1 port=${opts.standbyOf.port} user=postgres application_name=${opts.standbyOf.name}`;
  let child: ChildProcess & { postmasterPid?: number };
  let pid = 0;

  const launch = async () => {
    const args = ['-D', data, '-p', String(port), ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
    const [cmd, cmdArgs] = wrap(join(PG_BIN, 'postgres'), args);
    child = spawn(cmd, cmdArgs, { stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(child);
    child.once('exit', () => live.delete(child));
    let log = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`postgres did not start within ${START_TIMEOUT_MS} ms:\n${log}`)), START_TIMEOUT_MS);
      const fail = (err: Error) => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(err);
      };
      child.once('exit', (code) => fail(new Error(`postgres exited (${code}) before it was ready:\n${log}`)));
      const onData = (chunk: Buffer) => {
        log += chunk.toString();
        if (log.length > 64 * 1024) log = log.slice(-32 * 1024);
        // A standby says "ready to accept read-only connections".
        if (/database system is ready to accept (read-only )?connections/.test(log)) {
          clearTimeout(timer);
          child.stderr!.off('data', onData);
          child.removeAllListeners('exit');
          child.once('exit', () => live.delete(child));
          resolve();
        }
      };
      child.stderr!.on('data', onData);
    });
    child.stderr!.resume(); // the server's own log is not needed once it is up
    pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    child.postmasterPid = pid;
  };

  const exited = () => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
  await launch().catch((err) => {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  });
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let dbs = 0;
  let stopped = false;

  return {
    port,
    dir,
    url,
    get pid() {
      return pid;
    },
    async newDatabase() {
      const name = `t${++dbs}_${process.pid}`;
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    async kill9(killOpts = {}) {
      const backends = killOpts.backends ? childrenOf(pid) : [];
      process.kill(pid, 'SIGKILL');
      for (const p of backends) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      await exited();
    },
    async restart() {
      await launch();
    },
    async stop(stopOpts = {}) {
      if (stopped) return;
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(pid, 'SIGINT'); // fast shutdown: ends sessions, no waiting for clients to leave
        } catch {
          /* already gone */
        }
        await exited();
      }
      if (!stopOpts.keep) {
        stopped = true;
        rmSync(dir, { recursive: true, force: true });
        dirs.delete(dir);
      }
    },
  };
}

function runTool(cmd: string, args: string[], timeoutMs: number): Promise<{ status: number | null; stderr: string; error?: Error }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      resolve({ status: null, stderr, error });
    });
    child.once('close', (status) => {
      // 'close', not 'exit': stderr is read to its end.
      clearTimeout(timer);
      resolve({ status, stderr });
    });
  });
}

/** The pids whose parent is `pid` (from /proc), e.g. a postmaster's backends, walsender and background workers. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Fields after the parenthesised command name: state, then ppid.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

function pgUid(): number {
  return Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
}
function pgGid(): number {
  return Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
}

/** One query on a fresh connection to `url` (tests read and doctor the database with it). */
export async function sql<T = Record<string, unknown>>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as T[];
  } finally {
    await c.end();
  }
}
