/**
 * The ledgers' C2SP checkpoints (c2sp.org/tlog-checkpoint; names and format in protocol/ledger-checkpoints.ts): one
 * signed note per log, made from the same tree as the latest signed head of PROOFCHAIN.json and written atomically
 * beside ROOT.txt, so the offline tools and a static mirror (`vaultmesh ledger tiles`) publish exactly what the
 * center signed.
 *
 * A log without a signed head yet has the checkpoint of the empty tree (size 0, SHA-256("")), so witnesses and
 * clients can start from size 0.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nodeCryptoBackend, type Ed25519Backend } from '../../protocol/ed25519.js';
import type { KeyPair } from '../../protocol/keys.js';
import { EMPTY_ROOT } from '../../protocol/merkle.js';
import {
  CHECKPOINT_FILES,
  assertLedgerOrigin,
  ledgerVerifierKey,
  logOrigin,
  makeCheckpointNote,
  type CheckpointLog,
} from '../../protocol/ledger-checkpoints.js';
import { createLatestFileWriter } from '../../lib/latest-file-writer.js';

export interface CheckpointWriter {
  readonly log: CheckpointLog;
  /** `<origin>/<log>`. */
  readonly origin: string;
  readonly vkey: string;
  readonly file: string;
  /** The latest checkpoint note (undefined before the first `update`). */
  note(): string | undefined;
  /** Its tree size. */
  treeSize(): number;
  /**
   * Makes the checkpoint of this head (no head = the empty tree) and returns the note, served from memory at once;
   * the file is rewritten, if it changed, off the event loop (`flush` waits for it).
   */
  update(head: { tree_size: number; root_hash: string } | undefined): string;
  /** Resolves once the file holds the latest note; rejects if that write failed (the next change retries). */
  flush(): Promise<void>;
}

export interface CheckpointWriterOptions {
  dir: string;
  log: CheckpointLog;
  origin: string;
  key: KeyPair;
  backend?: Ed25519Backend;
}

export function createCheckpointWriter(opts: CheckpointWriterOptions): CheckpointWriter {
  assertLedgerOrigin(opts.origin);
  const file = join(opts.dir, CHECKPOINT_FILES[opts.log]);
  const backend = opts.backend ?? nodeCryptoBackend;
  let current: string | undefined;
  let size = 0;
  // The newest note written or being written; undefined after a failed write, so the next update writes again.
  let written: string | undefined;
  const writer = createLatestFileWriter(file, 0o644);
  const onDisk = (): string | undefined => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  };
  return {
    log: opts.log,
    origin: logOrigin(opts.origin, opts.log),
    // A getter: the center key can be rotated while the center runs (keys/center-key-ring.ts).
    get vkey() {
      return ledgerVerifierKey(opts.origin, opts.log, opts.key.publicKey);
    },
    file,
    note: () => current,
    treeSize: () => size,
    update(head) {
      const root = head ?? { tree_size: 0, root_hash: EMPTY_ROOT.toString('hex') };
      // Ed25519 is deterministic: the same tree and key give the same bytes, so a rewrite is needed only on change.
      const note = makeCheckpointNote(opts.origin, opts.log, root, opts.key, backend);
      if (note !== current) {
        // Read once, at the first update (start-up): a restart with an unchanged tree does not rewrite the file.
        if (current === undefined && written === undefined && onDisk() === note) written = note;
        if (written !== note) {
          written = note;
          writer.write(note).catch(() => {
            if (written === note) written = undefined;
          });
        }
        current = note;
      }
      size = root.tree_size;
      return note;
    },
    flush: () => writer.flush(),
  };
}
