/**
 * A throw-away PostgreSQL 15 for a benchmark: `initdb` and `postgres` from Debian's postgresql-15 in a temp dir on a
 * free loopback port (as the `postgres` user through `runuser` when run as root), with PostgreSQL's durable defaults
 * (fsync on, synchronous_commit on), since commit latency is what is measured. `stop()` ends it and removes the dir.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PG_BIN = '/usr/lib/postgresql/15/bin';
const asRoot = process.getuid?.() === 0;
const wrap = (cmd, args) => (asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]);

export const postgresPresent = () => existsSync(join(PG_BIN, 'initdb')) && existsSync(join(PG_BIN, 'postgres'));

const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });

const id = (cmd) => Number(spawnSync('id', [cmd, 'postgres'], { encoding: 'utf8' }).stdout.trim());

export async function startPostgresServer() {
  if (!postgresPresent()) throw new Error(`PostgreSQL 15 is not installed (${PG_BIN}); apt-get install -y postgresql-15`);
  const dir = mkdtempSync(join(tmpdir(), 'vm-bench-pg-'));
  if (asRoot) chownSync(dir, id('-u'), id('-g'));
  const data = join(dir, 'data');
  const [initCmd, initArgs] = wrap(join(PG_BIN, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C']);
  const init = spawnSync(initCmd, initArgs, { encoding: 'utf8', timeout: 60_000 });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${init.stderr}`);
  }
  const port = await freePort();
  const [cmd, args] = wrap(join(PG_BIN, 'postgres'), ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  // Signals go to the postmaster itself (as root, `child` is runuser, which does not pass them on).
  let pid = 0;
  const kill = () => {
    try {
      if (pid) process.kill(pid, 'SIGKILL');
      child.kill('SIGKILL');
    } catch {
      /* gone */
    }
  };
  process.on('exit', kill);
  await new Promise((resolve, reject) => {
    let log = '';
    const t = setTimeout(() => reject(new Error(`postgres did not start:\n${log}`)), 60_000);
    child.stderr.on('data', (d) => {
      log += d;
      if (/ready to accept connections/.test(log)) {
        clearTimeout(t);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`postgres exited (${code}):\n${log}`)));
  });
  child.stderr.resume();
  pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let n = 0;
  return {
    url,
    async newDatabase() {
      const pg = (await import('pg')).default;
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      const name = `bench_${++n}`;
      await c.query(`CREATE DATABASE ${name}`);
      await c.end();
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    async stop() {
      process.off('exit', kill);
      child.removeAllListeners('exit');
      const exited = new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
      process.kill(pid, 'SIGINT'); // fast shutdown
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
