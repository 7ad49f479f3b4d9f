/**
 * The PostgreSQL store's schema and its versioned migrations. `schema_version` records each applied migration;
 * `migrate` applies the missing ones in order inside one transaction, under an advisory transaction lock so centers
 * starting together do not race, and refuses a database whose schema is newer than this program knows (an older
 * center must not write to a log whose meaning it does not know).
 */
import type pg from 'pg';
import { VaultMeshError } from '../protocol/errors.js';

export interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'the envelope log and its seq counter',
    sql: `
      -- One row per envelope, keyed by the global seq; line holds the exact canonical bytes that JSONL would store.
      CREATE TABLE envelopes (
        seq bigint PRIMARY KEY CHECK (seq > 0),
        journal text NOT NULL CHECK (journal IN ('heartbeats', 'scans', 'commands', 'events')),
        kind text NOT NULL,
        id text NOT NULL,
        author text NOT NULL,
        node_id text,
        ts timestamptz NOT NULL,
        line bytea NOT NULL
      );
      CREATE INDEX envelopes_journal_seq ON envelopes (journal, seq);
      CREATE INDEX envelopes_ts ON envelopes (ts);
      CREATE INDEX envelopes_author_id ON envelopes (author, id);
      CREATE INDEX envelopes_node_seq ON envelopes (node_id, seq) WHERE node_id IS NOT NULL;
      -- The seq counter: an append locks this row for its transaction, so seq order is commit order, without gaps.
      CREATE TABLE log_head (
        one boolean PRIMARY KEY DEFAULT true CHECK (one),
        last_seq bigint NOT NULL CHECK (last_seq >= 0)
      );
      INSERT INTO log_head (one, last_seq) VALUES (true, 0);
    `,
  },
  {
    version: 2,
    description: 'claims: one-time keys taken by appends across replicas',
    sql: `
      -- A unique key an append took with its entries (join-token use, enrollment generation, Idempotency-Key) or on
      -- its own (a request nonce): the primary key is what makes one-time rules hold across replicas. seq is the
      -- envelope that took it (0: none); a key with an expiry can be taken again once it has passed.
      CREATE TABLE claims (
        key text PRIMARY KEY,
        seq bigint NOT NULL CHECK (seq >= 0),
        expires_at timestamptz
      );
      CREATE INDEX claims_expires_at ON claims (expires_at) WHERE expires_at IS NOT NULL;
    `,
  },
  {
    version: 3,
    description: 'leadership term, the ledgers\' signed tree heads, the heartbeat summary',
    sql: `
      -- The leader's fencing term: raised by one by each new leader, on its lock connection, right after taking the
      -- leader lock. A head write names its term and lands only while that term is current.
      CREATE TABLE leader_term (
        one boolean PRIMARY KEY DEFAULT true CHECK (one),
        term bigint NOT NULL CHECK (term >= 0),
        holder text,
        since timestamptz
      );
      INSERT INTO leader_term (one, term) VALUES (true, 0);
      -- The ledgers' proof chains, one row per signed tree head (idx = its index in the chain, as in PROOFCHAIN.json);
      -- entry holds the canonical chain entry (head, public key, consistency proof) exactly as the chain file would.
      CREATE TABLE ledger_heads (
        log text NOT NULL CHECK (log IN ('scans', 'commands')),
        idx bigint NOT NULL CHECK (idx >= 0),
        term bigint NOT NULL,
        tree_size bigint NOT NULL CHECK (tree_size > 0),
        root_hash text NOT NULL,
        entry text NOT NULL,
        PRIMARY KEY (log, idx)
      );
      -- Heartbeat retention (command-center/store/postgres-retention.ts): what the deleted heartbeats contributed to
      -- the fleet state, in the JSON of heartbeats.summary.json (store/heartbeat-segments.ts).
      CREATE TABLE heartbeat_summary (
        one boolean PRIMARY KEY DEFAULT true CHECK (one),
        summary text NOT NULL
      );
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/**
 * Arbitrary but fixed keys of the advisory locks ("vmcc" and 1 / 2 / 3). Every running center holds WRITER_LOCK in
 * shared mode (any number of replicas write); `vaultmesh-cc store copy` takes it exclusively, so it never copies
 * into a database a center is writing, and no center starts during a copy.
 */
export const MIGRATE_LOCK: readonly [number, number] = [0x766d6363, 1];
export const WRITER_LOCK: readonly [number, number] = [0x766d6363, 2];
/** Held by the leader among the replicas (command-center/store/postgres-leadership.ts), on its own connection. */
export const LEADER_LOCK: readonly [number, number] = [0x766d6363, 3];

export interface MigrateResult {
  from: number;
  to: number;
  applied: Migration[];
}

type Queryable = Pick<pg.ClientBase, 'query'>;

/** The schema version recorded in the database (0: none yet). */
export async function schemaVersion(client: Queryable): Promise<number> {
  const exists = await client.query<{ t: string | null }>(`SELECT to_regclass('schema_version')::text AS t`);
  if (!exists.rows[0]?.t) return 0;
  const r = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_version');
  return r.rows[0]?.v ?? 0;
}

export function refuseNewer(found: number, known = SCHEMA_VERSION): void {
  if (found > known) {
    throw new VaultMeshError('SCHEMA_TOO_NEW', `the database schema is version ${found}, newer than this center knows (${known}); upgrade vaultmesh-cc before it uses this database`);
  }
}

/** Brings the schema up to `SCHEMA_VERSION` (one transaction); refuses a newer one. `client` must be a dedicated connection. */
export async function migrate(client: pg.ClientBase, migrations: readonly Migration[] = MIGRATIONS): Promise<MigrateResult> {
  const known = migrations[migrations.length - 1]?.version ?? 0;
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [...MIGRATE_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_version (
      version integer PRIMARY KEY,
      description text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const from = await schemaVersion(client);
    refuseNewer(from, known);
    const applied: Migration[] = [];
    for (const m of migrations) {
      if (m.version <= from) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO schema_version (version, description) VALUES ($1, $2)', [m.version, m.description]);
      applied.push(m);
    }
    await client.query('COMMIT');
    return { from, to: Math.max(from, known), applied };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** `vaultmesh-cc migrate`: one connection, the migrations, closed again. */
export async function migrateDatabase(url: string, connect: (url: string) => pg.Client): Promise<MigrateResult> {
  const client = connect(url);
  await client.connect();
  try {
    return await migrate(client);
  } finally {
    await client.end();
  }
}
