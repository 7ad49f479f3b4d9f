/**
 * The ledgers' signed tree heads in PostgreSQL (`ledger_heads`, lib/postgres-schema.ts): the one proof chain per log
 * that every replica on the database serves, so ROOT, proofs and checkpoints agree whichever replica answers.
 *
 * Writes go only through the leader's lock connection, in one statement that inserts nothing unless that session
 * still holds the leader lock and its term is still the current one, and the index is the next one of the chain. A
 * deposed leader (its session gone, or a newer term raised by a newer leader) gets zero rows: NOT_LEADER, and it
 * writes no file either (the ledger writes its files after this succeeds).
 */
import pg from 'pg';
import { VaultMeshError } from '../../protocol/errors.js';
import type { ChainEntry, LedgerName } from '../../protocol/ledger-files.js';
import type { SharedHeads } from '../ledger/ledger.js';
import type { PostgresLeadership } from './postgres-leadership.js';

export const HEADS_CHANNEL = 'vaultmesh_heads';

/**
 * The fenced insert, parameters: log, idx, term, tree_size, root_hash, entry, lock key (2). Exported for the test
 * that runs it from sessions without the lock or with an old term.
 */
export const FENCED_HEAD_INSERT = `
  INSERT INTO ledger_heads (log, idx, term, tree_size, root_hash, entry)
  SELECT $1, $2, $3, $4, $5, $6
  WHERE EXISTS (
      SELECT 1 FROM pg_locks
      WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()
        AND classid = $7::bigint::oid AND objid = $8::bigint::oid AND objsubid = 2)
    AND $3 = (SELECT term FROM leader_term)
    AND $2 = coalesce((SELECT max(idx) + 1 FROM ledger_heads WHERE log = $1), $2)`;

export function createPostgresHeads(leadership: PostgresLeadership): SharedHeads {
  return {
    async lastIndex(log: LedgerName) {
      const r = await leadership.query<{ i: string | null }>('SELECT max(idx) AS i FROM ledger_heads WHERE log = $1', [log]);
      return r.rows[0]?.i == null ? -1 : Number(r.rows[0].i);
    },
    async since(log: LedgerName, from: number, limit: number) {
      const r = await leadership.query<{ idx: string; entry: string }>('SELECT idx, entry FROM ledger_heads WHERE log = $1 AND idx >= $2 ORDER BY idx LIMIT $3', [log, from, limit]);
      return r.rows.map((row) => ({ index: Number(row.idx), line: row.entry }));
    },
    async append(log: LedgerName, index: number, entry: ChainEntry, line: string) {
      const term = leadership.term;
      if (!leadership.isLeader || term === 0) throw new VaultMeshError('NOT_LEADER', `not the leader: head #${index} of ${log} not written`);
      const r = await leadership.query(FENCED_HEAD_INSERT, [log, index, term, entry.head.tree_size, entry.head.root_hash, line, ...leadership.lockKey]);
      if (r.rowCount !== 1) throw new VaultMeshError('NOT_LEADER', `the database refused head #${index} of ${log}: this center no longer holds the leader lock or term ${term}, or the chain moved on`);
      await leadership.query('SELECT pg_notify($1, $2)', [HEADS_CHANNEL, log]).catch(() => undefined);
    },
  };
}

/**
 * The signers of each ledger's last head in the database, for `--new-center-key` (center-key.ts): the replaced key
 * is trusted on those heads, so the new key's first head continues the chain. None before migration 2.
 */
export async function storedHeadSigners(url: string, connectTimeoutMs = 5000): Promise<Array<{ chainFile: string; keyId: string; publicKey: string }>> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: connectTimeoutMs });
  try {
    await client.connect();
    const exists = await client.query<{ t: string | null }>(`SELECT to_regclass('ledger_heads')::text AS t`);
    if (!exists.rows[0]?.t) return [];
    const r = await client.query<{ log: string; entry: string }>('SELECT DISTINCT ON (log) log, entry FROM ledger_heads ORDER BY log, idx DESC');
    return r.rows.map((row) => {
      const e = JSON.parse(row.entry) as ChainEntry;
      return { chainFile: `ledger_heads (${row.log})`, keyId: e.head.key_id, publicKey: e.public_key };
    });
  } catch (err) {
    throw new VaultMeshError('JOURNAL_UNAVAILABLE', `start-up: database unavailable: ${(err as Error).message}`, { status: 503, cause: err });
  } finally {
    await client.end().catch(() => undefined);
  }
}
