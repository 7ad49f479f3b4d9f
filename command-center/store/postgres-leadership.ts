/**
 * Leadership among centers on one PostgreSQL database (the `Leadership` of command-center/leadership.ts): the leader
 * is the session holding the advisory lock LEADER_LOCK, on a connection of its own (not the store's), so who leads is
 * independent of who writes envelopes.
 *
 * A follower retries `pg_try_advisory_lock` every `takeoverMs`: when the leader's session ends (process killed,
 * machine gone, connection cut) PostgreSQL releases its lock and a follower takes it within that period. On taking
 * it, the new leader raises `leader_term.term` on the same connection; head writes carry that term and are fenced
 * (postgres-heads.ts). A leader pings its connection on the same period; an error or a lost connection deposes it at
 * once, before the next head could be attempted.
 *
 * The connection also carries LISTENs (`listen`): followers learn of new heads without polling.
 */
import pg from 'pg';
import { hostname } from 'node:os';
import { VaultMeshError } from '../../protocol/errors.js';
import type { Logger } from '../../lib/logger.js';
import { LEADER_LOCK } from '../../lib/postgres-schema.js';
import { realTimers, type Timers } from '../../lib/timers.js';
import type { Leadership, LeaderRole } from '../leadership.js';

export const DEFAULT_TAKEOVER_MS = 5000;

export interface PostgresLeadershipOptions {
  url: string;
  log: Logger;
  /** A follower's retry period, and the leader's liveness ping: the bound on a takeover after the leader is gone. */
  takeoverMs?: number;
  timers?: Timers;
  /** Shown in `leader_term.holder` (default host:pid). */
  name?: string;
  connectTimeoutMs?: number;
  queryTimeoutMs?: number;
}

export interface PostgresLeadership extends Leadership {
  readonly lockKey: readonly [number, number];
  /** A statement on the lock connection (a follower's too); 503 JOURNAL_UNAVAILABLE while it has none. */
  query<R extends pg.QueryResultRow>(text: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Runs `fn` on each notification of `channel` (LISTEN on the lock connection, renewed after a reconnect). */
  listen(channel: string, fn: () => void): void;
}

export function createPostgresLeadership(opts: PostgresLeadershipOptions): PostgresLeadership {
  const { log } = opts;
  const timers = opts.timers ?? realTimers;
  const takeoverMs = opts.takeoverMs ?? DEFAULT_TAKEOVER_MS;
  const name = opts.name ?? `${hostname()}:${process.pid}`;
  const clientConfig: pg.ClientConfig = {
    connectionString: opts.url,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? Math.max(1000, takeoverMs),
    query_timeout: opts.queryTimeoutMs ?? Math.max(1000, takeoverMs),
    application_name: 'vaultmesh-cc leader',
    keepAlive: true,
  };
  const listeners = new Set<(leader: boolean) => void>();
  const channels = new Map<string, Set<() => void>>();
  let conn: pg.Client | undefined;
  let leading = false;
  let term = 0;
  let changes = 0;
  let timer: unknown;
  let running: Promise<void> | undefined;
  let closed = false;

  const set = (v: boolean) => {
    if (v === leading) return;
    leading = v;
    if (!v) term = 0;
    changes++;
    for (const l of [...listeners]) {
      try {
        l(v);
      } catch (err) {
        log.error(`leadership listener failed: ${(err as Error)?.stack ?? String(err)}`);
      }
    }
  };

  const drop = (c: pg.Client | undefined, why?: string) => {
    if (!c) return;
    if (conn === c) {
      conn = undefined;
      if (leading) log.warn(`leader: ${why ?? 'connection closed'}; this center no longer leads`);
      set(false); // at once: the lock went with the session
    }
    c.end().catch(() => undefined);
  };

  async function connect(): Promise<pg.Client> {
    const c = new pg.Client(clientConfig);
    c.on('error', (err) => drop(c, `lock connection lost (${err.message})`));
    c.on('end', () => drop(c, 'lock connection ended'));
    c.on('notification', (n) => {
      for (const fn of channels.get(n.channel) ?? []) fn();
    });
    try {
      await c.connect();
      for (const ch of channels.keys()) await c.query(`LISTEN ${pg.escapeIdentifier(ch)}`);
    } catch (err) {
      c.end().catch(() => undefined);
      throw err;
    }
    return c;
  }

  let connecting: Promise<pg.Client> | undefined;
  /** The lock connection, opened on first use and again after a loss (one attempt at a time). */
  function ensureConn(): Promise<pg.Client> {
    if (conn) return Promise.resolve(conn);
    if (closed) return Promise.reject(new VaultMeshError('SHUTTING_DOWN', 'the command center is shutting down', { status: 503 }));
    connecting ??= connect()
      .then((c) => {
        if (closed) {
          c.end().catch(() => undefined);
          throw new VaultMeshError('SHUTTING_DOWN', 'the command center is shutting down', { status: 503 });
        }
        conn = c;
        return c;
      })
      .finally(() => {
        connecting = undefined;
      });
    return connecting;
  }

  /** One round: (re)connect, then ping as leader or try the lock as follower. */
  async function round(): Promise<void> {
    const c = await ensureConn();
    if (leading) {
      try {
        await c.query('SELECT 1');
      } catch (err) {
        drop(c, `liveness ping failed (${(err as Error).message})`);
      }
      return;
    }
    const got = await c.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS locked', [...LEADER_LOCK]);
    if (!got.rows[0]!.locked) return;
    try {
      const r = await c.query<{ term: string }>('UPDATE leader_term SET term = term + 1, holder = $1, since = now() RETURNING term', [name]);
      if (r.rowCount !== 1) throw new Error('leader_term has no row (schema not migrated?)');
      if (closed || conn !== c) throw new Error('closed while taking the lead');
      term = Number(r.rows[0]!.term);
    } catch (err) {
      drop(c, `could not raise the term (${(err as Error).message})`); // ends the session: the lock goes with it
      throw err;
    }
    log.info(`leader: this center leads (term ${term})`);
    set(true);
  }

  function tick(): void {
    if (closed || running) return;
    running = round()
      .catch((err) => {
        if (!closed) log.warn(`leader election: ${(err as Error).message}`);
      })
      .finally(() => {
        running = undefined;
      });
  }

  return {
    lockKey: LEADER_LOCK,
    get role(): LeaderRole {
      return leading ? 'leader' : 'follower';
    },
    get isLeader() {
      return leading;
    },
    get term() {
      return term;
    },
    get changes() {
      return changes;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    start() {
      if (closed || timer !== undefined) return;
      tick();
      timer = timers.setInterval(tick, takeoverMs);
    },
    async query<R extends pg.QueryResultRow>(text: string, params: unknown[] = []) {
      try {
        const c = await ensureConn();
        return await c.query<R>(text, params);
      } catch (err) {
        if (err instanceof VaultMeshError) throw err;
        throw new VaultMeshError('JOURNAL_UNAVAILABLE', `ledger heads: database unavailable: ${(err as Error).message}`, { status: 503, cause: err });
      }
    },
    listen(channel, fn) {
      let set = channels.get(channel);
      if (!set) {
        channels.set(channel, (set = new Set()));
        conn?.query(`LISTEN ${pg.escapeIdentifier(channel)}`).catch(() => undefined);
      }
      set.add(fn);
    },
    async close() {
      if (closed) return;
      closed = true;
      if (timer !== undefined) timers.clearInterval(timer);
      timer = undefined;
      await running;
      await connecting?.catch(() => undefined);
      // Ending the session releases the lock: a follower takes over within its period, not after a timeout.
      drop(conn, 'shutting down');
    },
  };
}
