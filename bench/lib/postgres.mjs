/**
 * A throwaway PostgreSQL 15 for a benchmark (the same recipe as test/postgres.ts: Debian's postgresql-15 binaries,
 * a temp data dir, a free loopback port, run as the `postgres` user when we are root). `stop()` removes it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PG_BIN = '/usr/lib/postgresql/15/bin';
export const postgresPresent = () => existsSync(join(PG_BIN, 'initdb')) && existsSync(join(PG_BIN, 'postgres'));

const asRoot = process.getuid?.() === 0;
const wrap = (cmd, args) => (asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]);
const id = (flag) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());

async function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

export async function startPostgres() {
  const dir = mkdtempSync(join(tmpdir(), 'vm-bench-pg-'));
  if (asRoot) chownSync(dir, id('-u'), id('-g'));
  const data = join(dir, 'data');
  const [ic, ia] = wrap(join(PG_BIN, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const init = spawnSync(ic, ia, { encoding: 'utf8', timeout: 60_000 });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${init.stderr}`);
  }
  const port = await freePort();
  const [pc, pa] = wrap(join(PG_BIN, 'postgres'), ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`, '-c', 'fsync=off']);
  const child = spawn(pc, pa, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  await new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`postgres did not start:\n${log}`)), 30_000);
    child.stderr.on('data', (d) => {
      log += d;
      if (/ready to accept connections/.test(log)) {
        clearTimeout(t);
        res();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      rej(new Error(`postgres exited (${code}):\n${log}`));
    });
  });
  child.stderr.resume();
  const base = `postgres://postgres@127.0.0.1:${port}`;
  let n = 0;
  const pg = (await import('pg')).default;
  return {
    url: `${base}/postgres`,
    async newDatabase() {
      const name = `b${++n}_${process.pid}`;
      const c = new pg.Client({ connectionString: `${base}/postgres` });
      await c.connect();
      await c.query(`CREATE DATABASE ${name}`);
      await c.end();
      return `${base}/${name}`;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        // The postmaster itself (runuser does not pass signals on): a fast shutdown.
        const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
        const exited = new Promise((r) => child.once('exit', r));
        process.kill(pid, 'SIGINT');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
