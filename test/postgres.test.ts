import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { requirePostgres, startPostgres, type TestPostgres } from './postgres.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function one<T>(url: string, sql: string): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const result = await c.query(sql);
    return (Array.isArray(result) ? result.at(-1) : result).rows[0] as T;
  } finally {
    await c.end();
  }
}

describe.skipIf(!requirePostgres('the PostgreSQL test harness'))('the PostgreSQL test harness', () => {
  let server: TestPostgres | undefined;
  afterAll(() => server?.stop());

  it('starts a real PostgreSQL 15 on loopback, survives kill -9 with a restart, and stop() ends it and removes its dir', async () => {
    server = await startPostgres();
    const db = await server.newDatabase();
    expect((await one<{ server_version: string }>(db, 'SHOW server_version')).server_version).toMatch(/^15\./);
    await one(db, 'CREATE TABLE t (x int); INSERT INTO t VALUES (42)');
    const first = server.pid;
    await server.kill9();
    expect(alive(first)).toBe(false);
    await server.restart();
    expect(server.pid).not.toBe(first);
    expect(await one(db, 'SELECT x FROM t')).toEqual({ x: 42 });
    const { pid, dir } = server;
    await server.stop();
    expect(alive(pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
  });
});
