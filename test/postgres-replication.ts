/**
 * A PostgreSQL 15 primary with one synchronous streaming standby, for failover tests: the primary requires the
 * standby's flush before a COMMIT returns (`synchronous_standby_names = 'ANY 1 (s1)'`, `synchronous_commit = on`),
 * so an acknowledged transaction is on the standby when the primary is lost. The standby is a `pg_basebackup -R` of
 * the primary on its own loopback port; `promote()` turns it into a primary (`pg_promote()`, waiting until it is
 * done), as Patroni or a managed service would.
 *
 * The standby streams through a loopback proxy (`link`) so that a test can stall replication.
 *
 * Both servers run with `fsync = off` like every harness server: the tests kill processes, not machines, so the
 * page cache of both survives; what the test checks is which transactions reached the standby at all.
 */
import pg from 'pg';
import { startPostgres, type TestPostgres } from './postgres.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

export const STANDBY_NAME = 's1';
const SYNC_WAIT_MS = 30_000;

export interface ReplicatedPostgres {
  primary: TestPostgres;
  standby: TestPostgres;
  /**
   * The replication path from the standby to the primary (a proxy): `link.hold()` stalls streaming, so a test can
   * show that a COMMIT then waits for the standby instead of being acknowledged without it.
   */
  link: TcpProxy;
  /** A new database on the primary (replicated to the standby); its name. */
  newDatabase(): Promise<string>;
  /** A URL to database `name` on `server`. */
  urlOf(server: TestPostgres, name: string): string;
  /** Promotes the standby to a primary and waits until it accepts writes. */
  promote(): Promise<void>;
  stop(): Promise<void>;
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

export async function startReplicatedPostgres(): Promise<ReplicatedPostgres> {
  const primary = await startPostgres({ settings: { synchronous_standby_names: `ANY 1 (${STANDBY_NAME})`, synchronous_commit: 'on', wal_level: 'replica', max_wal_senders: '4' } });
  let standby: TestPostgres;
  let link: TcpProxy;
  try {
    link = await startTcpProxy(primary.port);
  } catch (err) {
    await primary.stop();
    throw err;
  }
  try {
    standby = await startPostgres({ standbyOf: { port: link.port, name: STANDBY_NAME } });
  } catch (err) {
    await link.close();
    await primary.stop();
    throw err;
  }
  const stop = async () => {
    await link.close();
    await Promise.all([primary.stop(), standby.stop()]);
  };
  try {
    // Until the standby streams, a COMMIT on the primary would wait for it: be sure it is the synchronous one.
    const end = Date.now() + SYNC_WAIT_MS;
    for (;;) {
      const r = await withClient(primary.url, (c) => c.query<{ sync_state: string }>('SELECT sync_state FROM pg_stat_replication WHERE application_name = $1', [STANDBY_NAME]));
      if (r.rows[0]?.sync_state === 'quorum' || r.rows[0]?.sync_state === 'sync') break;
      if (Date.now() > end) throw new Error(`standby ${STANDBY_NAME} did not become synchronous within ${SYNC_WAIT_MS} ms (${JSON.stringify(r.rows)})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  let dbs = 0;
  const urlOf = (server: TestPostgres, name: string) => `postgres://postgres@127.0.0.1:${server.port}/${name}`;
  return {
    primary,
    standby,
    link,
    urlOf,
    async newDatabase() {
      const name = `f${++dbs}_${process.pid}`;
      await withClient(primary.url, (c) => c.query(`CREATE DATABASE ${name}`));
      return name;
    },
    async promote() {
      await withClient(standby.url, async (c) => {
        const r = await c.query<{ done: boolean }>('SELECT pg_promote(true, 30) AS done');
        if (!r.rows[0]?.done) throw new Error('pg_promote() did not finish within 30 s');
        const ro = await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
        if (ro.rows[0]?.r) throw new Error('the standby is still in recovery after pg_promote()');
      });
    },
    stop,
  };
}
