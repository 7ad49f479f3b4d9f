/**
 * `vaultmesh ledger export --database-url … --out DIR`: the ledgers of a PostgreSQL-backed center as the files
 * `vaultmesh ledger verify DIR` checks offline: the journals (byte for byte, cli/store-copy.ts), and per ledger its
 * proof chain from the `ledger_heads` table (PROOFCHAIN.json, with archive segments of 1,000 heads as a center
 * writes them) and ROOT.txt. Lines, heads and roots come from one database snapshot, so the export is consistent
 * even while centers run.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { VaultMeshError } from '../protocol/errors.js';
import { LEDGER_FILES, archiveFileName, chainEntrySchema, formatProofChain, formatRootFile, headHash, type LedgerName } from '../protocol/ledger-files.js';
import { writeFileAtomicSync } from '../lib/atomic-file.js';
import { copyStore } from './store-copy.js';

/** As the center writes them (command-center/ledger/ledger.ts). */
const CHAIN_HEADS_PER_FILE = 1000;
const FILE_MODE = 0o640;
const ARCHIVE_MODE = 0o440;

export interface ExportedLedger {
  log: LedgerName;
  heads: number;
  /** The last signed head's tree size (0: none yet). */
  tree_size: number;
  /** Leaves of the exported journal past the last signed head (verify reports them unless --allow-unsigned-tail). */
  unsigned: number;
}

export interface ExportResult {
  envelopes: number;
  last_seq: number;
  ledgers: ExportedLedger[];
}

export async function exportLedgers(url: string, out: string): Promise<ExportResult> {
  const heads = new Map<LedgerName, Array<{ idx: number; line: string }>>();
  const leaves: Record<LedgerName, number> = { scans: 0, commands: 0 };
  const copied = await copyStore(
    { kind: 'postgres', url },
    { kind: 'jsonl', dir: out },
    {
      atSourceSnapshot: async (client: pg.Client) => {
        const has = await client.query<{ t: string | null }>(`SELECT to_regclass('ledger_heads')::text AS t`);
        if (!has.rows[0]?.t) throw new VaultMeshError('USAGE', 'the database has no ledger heads table: start a center of this version on it (or run vaultmesh-cc migrate) first');
        for (const log of ['scans', 'commands'] as const) {
          const r = await client.query<{ idx: string; entry: string }>('SELECT idx, entry FROM ledger_heads WHERE log = $1 ORDER BY idx', [log]);
          heads.set(log, r.rows.map((row) => ({ idx: Number(row.idx), line: row.entry })));
          const n = await client.query<{ n: string }>('SELECT count(*) AS n FROM envelopes WHERE journal = $1', [log]);
          leaves[log] = Number(n.rows[0]!.n);
        }
      },
    },
  );
  mkdirSync(out, { recursive: true, mode: 0o750 });
  const ledgers: ExportedLedger[] = [];
  for (const log of ['scans', 'commands'] as const) {
    const rows = heads.get(log) ?? [];
    const files = LEDGER_FILES[log];
    if (rows.length === 0) {
      ledgers.push({ log, heads: 0, tree_size: 0, unsigned: leaves[log] });
      continue;
    }
    const entries = rows.map((r) => chainEntrySchema.parse(JSON.parse(r.line)));
    for (let i = 1; i < rows.length; i++) {
      if (rows[i]!.idx !== rows[i - 1]!.idx + 1) throw new VaultMeshError('LEDGER_CORRUPT', `ledger_heads of ${log} skips from head #${rows[i - 1]!.idx} to #${rows[i]!.idx}`);
    }
    // Full archive segments first, then the chain file with the rest, each with its position in the chain.
    let at = 0;
    while (rows.length - at > CHAIN_HEADS_PER_FILE) {
      const part = rows.slice(at, at + CHAIN_HEADS_PER_FILE);
      const position = { first_index: part[0]!.idx, previous_head_hash: entries[at]!.head.previous_head_hash };
      writeFileAtomicSync(join(out, archiveFileName(files.chainFile, part[0]!.idx, part.at(-1)!.idx)), formatProofChain(files.journalFile, part.map((r) => r.line), position), ARCHIVE_MODE);
      at += CHAIN_HEADS_PER_FILE;
    }
    const rest = rows.slice(at);
    const position = { first_index: rest[0]!.idx, previous_head_hash: at === 0 ? entries[0]!.head.previous_head_hash : headHash(entries[at - 1]!.head) };
    writeFileAtomicSync(join(out, files.chainFile), formatProofChain(files.journalFile, rest.map((r) => r.line), position), FILE_MODE);
    const last = entries.at(-1)!.head;
    writeFileAtomicSync(join(out, files.rootFile), formatRootFile(last), FILE_MODE);
    ledgers.push({ log, heads: rows.length, tree_size: last.tree_size, unsigned: Math.max(0, leaves[log] - last.tree_size) });
  }
  return { envelopes: copied.envelopes, last_seq: copied.lastSeq, ledgers };
}
