/**
 * The center's Merkle ledger over one journal file (used twice: scans and commands). Every complete line of the
 * journal is a leaf (leaf bytes = the line without its newline); after each durable batch the leaves are appended
 * in O(log n), and a signed tree head, with its consistency proof from the previous head, is added to the chain
 * file and the root file is rewritten, both atomically. The formats are in docs/LEDGER.md and, as code, in
 * protocol/ledger-files.ts (shared with the offline CLI).
 *
 * The chain file is bounded: it holds at most `maxChainHeads` heads (default 1,000). When it is full, its heads are
 * first written (atomically, fsynced) to an immutable archive segment `PROOFCHAIN-<first>-<last>.json` in the same
 * format, and only then is the chain file rewritten to start after them, recording its `first_index` and the hash of
 * the head before it. A crash between the two leaves the heads in both files; readers de-duplicate them. So a head
 * write costs O(maxChainHeads), not O(heads ever written). `load()` reads only the chain file (its last head is
 * all it needs); `vaultmesh ledger verify` reads the archive segments and the chain file in order.
 *
 * Beside the journal: `<name>.jsonl` (the log), ROOT file, PROOFCHAIN file, and `<name>.leaves`, a cache of
 * leaf hashes (32 bytes per line, line i at offset 32·i). The cache is never trusted for the tree: start-up
 * rehashes the journal (it has to read every line for the id index anyway, and SHA-256 runs near disk speed); the
 * cache is what lets start-up and `ledger verify` name the exact line that changed, because a cache whose root
 * matches a signed head is, by SHA-256 second-preimage resistance, the list of leaves the center signed.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalJson } from '../../protocol/canonical-json.js';
import { nodeCryptoBackend, type Ed25519Backend } from '../../protocol/ed25519.js';
import { VaultMeshError } from '../../protocol/errors.js';
import { toHex } from '../../protocol/hex.js';
import type { KeyPair } from '../../protocol/keys.js';
import {
  LEDGER_FILES,
  archiveFileName,
  chainPosition,
  envelopeIdOf,
  envelopeSeqOf,
  formatProofChain,
  formatRootFile,
  chainEntrySchema,
  headHash,
  parseProofChain,
  leavesFileFor,
  signTreeHead,
  type ChainEntry,
  type ChainPosition,
  type LedgerName,
  type LedgerRoot,
  type SignedTreeHead,
} from '../../protocol/ledger-files.js';
import { writeFileAtomic, writeFileAtomicSync } from '../../lib/atomic-file.js';
import { listArchiveSegments, readProofChain } from '../../lib/ledger-files.js';
import { checkProofChain } from '../../protocol/proof-chain-check.js';
import { HASH_SIZE, MerkleLog, leafHash, type MerkleTreeState } from '../../protocol/merkle.js';
import { createHash } from 'node:crypto';
import type { JournalName } from '../../protocol/envelope.js';
import type { Committed, EnvelopeReader } from '../store/envelope-store.js';
import { realTimers, type Timers } from '../../lib/timers.js';
import { parseIdIndex } from './id-index.js';

/** Ledger files are 0640 like the journals beside them (the log dir is 0750); archive segments are also read-only. */
export const LEDGER_FILE_MODE = 0o640;
const ARCHIVE_MODE = 0o440;

/** What a ledger reads back from the store: its journal's lines at load, one line again for a proof. */
export type LedgerStore = Pick<EnvelopeReader, 'readLines' | 'tail'>;

export interface LedgerOptions {
  /** Where the ledger files are (ROOT, PROOFCHAIN, leaf cache): the log dir. */
  dir: string;
  /** The journal whose lines are the leaves, read through the store. */
  store: LedgerStore;
  journal: JournalName;
  /** The journal's file name: the `log` of the chain file and the name in messages (`file:line`). */
  journalFile: string;
  rootFile: string;
  chainFile: string;
  /** Signs the tree heads. */
  key: KeyPair;
  now?: () => Date;
  backend?: Ed25519Backend;
  /** Minimum time between two heads written by `scheduleHead` (ms). */
  minHeadIntervalMs?: number;
  /** What `scheduleHead` waits on: the timers and the clock the interval is measured by (default: real, Date.now). */
  timers?: Timers;
  clockMs?: () => number;
  /** Where failures of scheduled (background) head writes and of the leaf cache go (default: stderr). */
  onError?: (err: unknown) => void;
  /** Most heads kept in the chain file; when full, they move to an archive segment (default 1,000). */
  maxChainHeads?: number;
  /**
   * Public keys (hex) whose signature on the last head `load()` accepts: the center's previous keys after a key
   * rotation. `key.publicKeyHex` is always trusted; default: only it.
   */
  trustedKeys?: readonly string[];
  /**
   * Called after each new head is written (chain, then root file): the C2SP checkpoint is made from it. A promise
   * returned is awaited before the next head (the checkpoint file follows the heads in order).
   */
  onHead?: (head: SignedTreeHead) => void | Promise<void>;
  /**
   * The proof chain shared by the replicas of one database (store/postgres-heads.ts). When set it is the record: a
   * head is written there first (fenced: only the leader's lands) and only then to the files, which become this
   * replica's mirror; heads signed by another replica are checked and adopted from it. Unset (JSONL): the files are
   * the record.
   */
  shared?: SharedHeads;
  /** Whether this replica signs heads (the leader; default always). A follower only adopts the shared ones. */
  leads?: () => boolean;
}

/** The replicas' common proof chain of each log (one row per head, `line` = the canonical chain entry). */
export interface SharedHeads {
  /** Index of the last head of `log`; -1 when it has none. */
  lastIndex(log: LedgerName): Promise<number>;
  /** Heads of `log` from chain index `from` on, in order, at most `limit`. */
  since(log: LedgerName, from: number, limit: number): Promise<Array<{ index: number; line: string }>>;
  /** Records the head at chain index `index`; throws NOT_LEADER when this replica may not (fenced). */
  append(log: LedgerName, index: number, entry: ChainEntry, line: string): Promise<void>;
}

export const DEFAULT_MAX_CHAIN_HEADS = 1000;

export interface InclusionProofResult {
  leaf_index: number;
  tree_size: number;
  leaf_hash: string;
  audit_path: string[];
  head: SignedTreeHead;
  public_key: string;
}

/**
 * A ledger's tree as a state snapshot saves it: the leaf count and root it had at the snapshot's seq, the id index
 * and each leaf's seq. The leaf hashes themselves are not in it: they are in the leaf cache file. With `tree` (the
 * Merkle tree's inner nodes) and the SHA-256 of those leaf hashes, a load whose cache holds exactly those leaves
 * takes the tree as it is instead of hashing every node again (≈ one node hash per leaf).
 */
export interface LedgerSnapshot {
  size: number;
  root: string;
  /** Or its JSON text (id-index.ts), as a snapshot keeps it and as a ledger loaded from one holds it until used. */
  ids: Map<string, number> | string;
  seqs: Float64Array;
  tree?: MerkleTreeState;
  leavesSha256?: string;
}

export interface Ledger {
  /**
   * Builds the tree from the journal (after torn-tail recovery) and checks it against the last signed head. With
   * `from` (a state snapshot's ledger state and seq), the leaves up to it come from the leaf cache, accepted only if
   * they give the snapshot's root, and only the journal's lines after that seq are read and hashed. Returns where
   * the leaves came from.
   */
  load(from?: LedgerSnapshot & { afterSeq: number }): Promise<'snapshot' | 'journal'>;
  /** The tree for a state snapshot (live structures: serialise before the next commit). */
  exportState(): LedgerSnapshot;
  /** Lines of this journal just made durable, in file order, without newlines. O(log n) per line. */
  append(lines: readonly Buffer[]): void;
  /**
   * Adopts the shared heads past this replica's (when shared), then, if this replica leads, signs and writes a new
   * head if the log grew since the last one. Calls are serialised.
   */
  publishHead(): Promise<SignedTreeHead | undefined>;
  /** Adopts the shared heads past this replica's (no-op without shared heads). */
  sync(): Promise<void>;
  /** Publishes a head soon: at most one per `minHeadIntervalMs`. */
  scheduleHead(): void;
  /** Cancels the pending timer and publishes now (shutdown); throws if that write fails. */
  flush(): Promise<void>;
  close(): Promise<void>;
  /** Current tree (every appended line, signed or not). */
  root(): LedgerRoot;
  latestHead(): SignedTreeHead | undefined;
  /** Inclusion proof of leaf `index` against the latest signed head. */
  inclusionProofFor(index: number): InclusionProofResult;
  /** Leaf index of the line whose envelope has this id. */
  indexOf(id: string): number | undefined;
  /** The journal line (without newline) of leaf `index`. */
  leafLine(index: number): Promise<Buffer>;
  /** MTH of leaves start..end-1 (hash tiles are built from it). */
  hashRange(start: number, end: number): Uint8Array;
  /** RFC 6962 consistency proof between two tree sizes ≤ size. */
  consistencyProof(oldSize: number, newSize: number): Buffer[];
  readonly size: number;
  readonly files: { journal: string; root: string; chain: string; leaves: string };
}

function ledgerError(message: string, cause?: unknown): VaultMeshError {
  return new VaultMeshError('LEDGER_MISMATCH', message, { status: 500, ...(cause === undefined ? {} : { cause }) });
}

export function createLedger(opts: LedgerOptions): Ledger {
  const now = opts.now ?? (() => new Date());
  const backend = opts.backend ?? nodeCryptoBackend;
  const minInterval = opts.minHeadIntervalMs ?? 1000;
  const onError = opts.onError ?? ((err: unknown) => console.error(`ledger ${opts.journalFile}: head not written:`, err));
  const maxChainHeads = opts.maxChainHeads ?? DEFAULT_MAX_CHAIN_HEADS;
  if (!Number.isSafeInteger(maxChainHeads) || maxChainHeads < 1) throw new VaultMeshError('USAGE', `maxChainHeads must be a positive integer, not ${maxChainHeads}`);
  const trustedAtStart = new Set([opts.key.publicKeyHex, ...(opts.trustedKeys ?? []).map((k) => k.toLowerCase())]);
  // The key may be rotated while the center runs (keys/center-key-ring.ts): its current public key is trusted too.
  const trusted = { has: (k: string) => trustedAtStart.has(k) || k === opts.key.publicKeyHex };
  const files = {
    journal: join(opts.dir, opts.journalFile),
    root: join(opts.dir, opts.rootFile),
    chain: join(opts.dir, opts.chainFile),
    leaves: join(opts.dir, leavesFileFor(opts.journalFile)),
  };

  let log = new MerkleLog();
  let ids = new Map<string, number>();
  // The id index as a snapshot gave it, not parsed until the first lookup or append needs it (id-index.ts).
  let idsText: string | undefined;
  const idIndex = (): Map<string, number> => {
    if (idsText !== undefined) {
      ids = parseIdIndex(idsText);
      idsText = undefined;
    }
    return ids;
  };
  let seqs: number[] = []; // the seq of each leaf's envelope, to read its line back for a proof
  let entryLines: string[] = []; // the heads of the chain file (not of archive segments)
  let position: ChainPosition = { first_index: 0, previous_head_hash: null };
  let last: ChainEntry | undefined;
  let loaded = false;
  let rootFileStale = false;
  let cacheFd: number | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  const timers = opts.timers ?? realTimers;
  const clockMs = opts.clockMs ?? Date.now;
  let timer: unknown;
  let lastPublishAt = 0;

  const addLine = (bytes: Buffer): Buffer => {
    const h = leafHash(bytes);
    const index = log.size;
    log.append(h);
    seqs.push(envelopeSeqOf(bytes) ?? -1);
    const id = envelopeIdOf(bytes);
    // Ids are unique by contract; if one repeats, the first (older) leaf keeps it.
    if (id !== undefined) {
      const index_ = idIndex();
      if (!index_.has(id)) index_.set(id, index);
    }
    return h;
  };

  const writeCache = (hashes: readonly Buffer[]): void => {
    if (cacheFd === undefined) return;
    try {
      writeSync(cacheFd, hashes.length === 1 ? hashes[0]! : Buffer.concat(hashes));
    } catch (err) {
      // The cache only speeds diagnosis; the journal line is already durable and the tree is in memory. Stop
      // writing (a gap would misalign it), report, and let the next load rebuild it.
      closeSync(cacheFd);
      cacheFd = undefined;
      onError(new VaultMeshError('LEDGER_CACHE_WRITE', `${files.leaves}: write failed, cache disabled until restart`, { cause: err }));
    }
  };

  /** Writes an archive segment once; an existing one (a retry after a crash) must already hold exactly this text. */
  const writeArchiveSegment = async (name: string, text: string): Promise<void> => {
    const path = join(opts.dir, name);
    let existing: string | undefined;
    try {
      existing = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (existing === undefined) await writeFileAtomic(path, text, ARCHIVE_MODE);
    else if (existing !== text) throw ledgerError(`${name} already exists with other heads; refusing to overwrite an archive segment (run: vaultmesh ledger verify)`);
  };

  const nextIndex = () => position.first_index + entryLines.length;

  /**
   * Appends one head to the chain file (archiving a full one first) and rewrites the root file. The writes run on
   * the thread pool (each is temp + fsync + rename + directory fsync: 5-130 ms apiece on a busy disk, which on the
   * event loop held every request behind them); heads are serialised by `queue`, so one is in flight at a time.
   * In-memory state moves only once the chain file is durable: a proof is never served against an unwritten head.
   */
  const record = async (entry: ChainEntry, line: string): Promise<void> => {
    let nextLines: string[];
    let nextPosition = position;
    if (entryLines.length >= maxChainHeads) {
      // Full: archive its heads first (durably), then start the chain file after them. A crash in between
      // leaves them in both files, which readers tolerate; the reverse order could lose them.
      const lastIndex = position.first_index + entryLines.length - 1;
      await writeArchiveSegment(archiveFileName(opts.chainFile, position.first_index, lastIndex), formatProofChain(opts.journalFile, entryLines, position));
      nextLines = [line];
      nextPosition = { first_index: lastIndex + 1, previous_head_hash: headHash(last!.head) };
    } else {
      nextLines = [...entryLines, line];
    }
    // The chain first: ROOT.txt must never name a root that no signed head covers.
    await writeFileAtomic(files.chain, formatProofChain(opts.journalFile, nextLines, nextPosition), LEDGER_FILE_MODE);
    entryLines = nextLines;
    position = nextPosition;
    last = entry;
    rootFileStale = true;
    await writeFileAtomic(files.root, formatRootFile(entry.head), LEDGER_FILE_MODE);
    rootFileStale = false;
  };

  /** Checks a run of chain entries (links, consistency proofs, last signature) as `vaultmesh ledger verify` would. */
  const checkRun = (lines: readonly string[], at: ChainPosition): void => {
    const chain = parseProofChain(formatProofChain(opts.journalFile, lines, at), `${opts.chainFile} (shared)`);
    const { problems } = checkProofChain([{ file: `${opts.chainFile} (shared)`, chain }], {
      journalFile: opts.journalFile,
      chainFile: opts.chainFile,
      backend,
      start: 'first-file',
      signatures: 'last',
    });
    if (problems.length > 0) throw ledgerError(`shared proof chain of ${opts.journalFile}: ${problems[0]!.message}`);
  };

  /** The longest prefix of `entries` whose trees this replica's log already holds; the last one's root checked. */
  const adoptable = (entries: readonly ChainEntry[]): number => {
    let n = 0;
    while (n < entries.length && entries[n]!.head.tree_size <= log.size) n++;
    if (n === 0) return 0;
    const e = entries[n - 1]!;
    if (!trusted.has(e.public_key)) throw ledgerError(`a shared head of ${opts.journalFile} (tree size ${e.head.tree_size}) is signed by key_id ${e.head.key_id}, not a key this center trusts`);
    if (toHex(log.rootAt(e.head.tree_size)) !== e.head.root_hash) {
      throw ledgerError(`${opts.journalFile}: the first ${e.head.tree_size} entries of this replica's log do not hash to the root of the shared head: the replicas' logs differ`);
    }
    return n;
  };

  /**
   * Brings the local chain up to the shared one. Returns false while a shared head covers more entries than this
   * replica has applied (it is adopted on a later call). A local chain that is not a prefix of the shared one (files
   * from before the shared chain, or another history) is replaced by the shared chain's newest window.
   */
  const syncShared = async (): Promise<boolean> => {
    const shared = opts.shared;
    if (!shared) return true;
    const name = opts.journal as LedgerName;
    const dbLast = await shared.lastIndex(name);
    if (dbLast < 0) return true; // nothing shared yet: this chain (if any) is continued by the next head
    const next = nextIndex();
    if (dbLast < next - 1) return rebuild(dbLast);
    if (dbLast === next - 1 && last && entryLines.length) {
      const [mine] = await shared.since(name, next - 1, 1);
      return mine?.line === entryLines.at(-1) ? true : rebuild(dbLast);
    }
    if (!last || entryLines.length === 0) return rebuild(dbLast);
    const rows = await shared.since(name, next - 1, maxChainHeads + 1);
    if (rows[0]?.index !== next - 1 || rows[0].line !== entryLines.at(-1)) return rebuild(dbLast);
    const more = rows.slice(1);
    checkRun(
      rows.map((r) => r.line),
      { first_index: next - 1, previous_head_hash: last.head.previous_head_hash },
    );
    const entries = more.map((r) => chainEntrySchema.parse(JSON.parse(r.line)) as ChainEntry);
    const n = adoptable(entries);
    for (let i = 0; i < n; i++) {
      await record(entries[i]!, more[i]!.line);
      await opts.onHead?.(entries[i]!.head);
    }
    return n === entries.length && next - 1 + more.length >= dbLast;
  };

  const rebuild = async (dbLast: number): Promise<boolean> => {
    const name = opts.journal as LedgerName;
    const from = Math.max(0, dbLast - maxChainHeads + 1);
    const rows = await opts.shared!.since(name, from, maxChainHeads);
    if (rows.length === 0) return true;
    const entries = rows.map((r) => chainEntrySchema.parse(JSON.parse(r.line)) as ChainEntry);
    const at: ChainPosition = { first_index: rows[0]!.index, previous_head_hash: entries[0]!.head.previous_head_hash };
    checkRun(rows.map((r) => r.line), at);
    const n = adoptable(entries);
    if (n === 0) return false;
    const lines = rows.slice(0, n).map((r) => r.line);
    await writeFileAtomic(files.chain, formatProofChain(opts.journalFile, lines, at), LEDGER_FILE_MODE);
    entryLines = lines;
    position = at;
    last = entries[n - 1]!;
    rootFileStale = true;
    await writeFileAtomic(files.root, formatRootFile(last.head), LEDGER_FILE_MODE);
    rootFileStale = false;
    await opts.onHead?.(last.head);
    return n === entries.length;
  };

  const ledger: Ledger = {
    files,
    get size() {
      return log.size;
    },

    exportState() {
      const { tree, leaves } = log.exportTree();
      // One linear SHA-256 (≈ 10 ms per 400,000 leaves), against the node hashes a load would otherwise redo.
      return { size: log.size, root: toHex(log.root()), ids: idsText ?? ids, seqs: Float64Array.from(seqs), tree, leavesSha256: createHash('sha256').update(leaves).digest('hex') };
    },

    async load(from) {
      const chain = readProofChain(files.chain);
      const at = chain ? chainPosition(chain) : { first_index: 0, previous_head_hash: null };
      if (!chain) {
        const archived = listArchiveSegments(opts.dir, opts.chainFile);
        if (archived.length > 0) throw ledgerError(`${opts.chainFile} is missing but its archive segments (${archived.at(-1)!.file}, …) exist: restore it from a backup`);
      } else {
        // The checker `vaultmesh ledger verify` uses, on the chain file alone (its archive segments are verify's
        // business): every head's link and consistency proof, and the last head's signature, which through the
        // links authenticates the others.
        const { problems } = checkProofChain([{ file: opts.chainFile, chain }], {
          journalFile: opts.journalFile,
          chainFile: opts.chainFile,
          backend,
          start: 'first-file',
          signatures: 'last',
        });
        if (problems.length > 0) throw ledgerError(problems[0]!.message);
      }
      let cache: Buffer | undefined;
      try {
        cache = readFileSync(files.leaves);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      const cached = cache ? Math.floor(cache.length / HASH_SIZE) : 0;

      let firstCacheMismatch: number | undefined;
      const addChecked = (bytes: Buffer) => {
        const i = log.size;
        const h = addLine(bytes);
        if (firstCacheMismatch === undefined && i < cached && cache!.compare(h, 0, HASH_SIZE, i * HASH_SIZE, (i + 1) * HASH_SIZE) !== 0) {
          firstCacheMismatch = i;
        }
      };
      let source: 'snapshot' | 'journal' = 'journal';
      if (from && cache && cached >= from.size && from.seqs.length === from.size) {
        // The cache's first leaves must give the root the snapshot recorded (and, below, the signed head's root):
        // they are the snapshot's leaves when their digest is the one it recorded, and its tree is then taken as it
        // is; otherwise they are hashed up again.
        const prefix = cache.subarray(0, from.size * HASH_SIZE);
        let candidate: MerkleLog | undefined;
        if (from.tree && from.leavesSha256 === createHash('sha256').update(prefix).digest('hex')) {
          try {
            candidate = MerkleLog.restore(prefix, from.tree);
          } catch {
            candidate = undefined;
          }
        }
        if (!candidate) {
          candidate = new MerkleLog({ capacity: Math.max(1024, from.size) });
          for (let i = 0; i < from.size; i++) candidate.append(cache.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE));
        }
        if (toHex(candidate.root()) === from.root) {
          log = candidate;
          if (typeof from.ids === 'string') {
            ids = new Map();
            idsText = from.ids;
          } else {
            ids = from.ids;
            idsText = undefined;
          }
          seqs = Array.from(from.seqs);
          source = 'snapshot';
          await opts.store.tail({ afterSeq: from.afterSeq }, (entry) => void addChecked(entry.line), { journals: [opts.journal] });
        }
      }
      if (source === 'journal') {
        log = new MerkleLog();
        ids = new Map();
        idsText = undefined;
        seqs = [];
        await opts.store.readLines(opts.journal, addChecked);
      }

      const heads = chain?.heads ?? [];
      last = heads.at(-1);
      if (last) {
        const { tree_size, root_hash } = last.head;
        const where = `head #${at.first_index + heads.length - 1} in ${opts.chainFile}`;
        if (log.size < tree_size) {
          throw ledgerError(`${opts.journalFile} has ${log.size} lines but ${where} signs ${tree_size}: the log was truncated or lines were deleted`);
        }
        if (!trusted.has(last.public_key)) {
          throw ledgerError(
            `${where} is signed by key_id ${last.head.key_id}, which is neither this center's key (${opts.key.keyId}) nor a previous key it was given` +
              ` (after a key rotation, start with VAULTMESH_PREVIOUS_KEYS=${last.public_key} if that key was yours)`,
          );
        }
        if (toHex(log.rootAt(tree_size)) !== root_hash) {
          // Name the line if the cache still holds the leaves that were signed (its prefix root matches the head).
          let line = '';
          if (firstCacheMismatch !== undefined && firstCacheMismatch < tree_size && cached >= tree_size) {
            const signed = new MerkleLog({ capacity: tree_size });
            for (let i = 0; i < tree_size; i++) signed.append(cache!.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE));
            if (toHex(signed.root()) === root_hash) line = `; first changed line: ${opts.journalFile}:${firstCacheMismatch + 1}`;
          }
          throw ledgerError(`${opts.journalFile}: the first ${tree_size} lines do not hash to the root of ${where}${line}`);
        }
      }
      entryLines = heads.map((e) => canonicalJson(e));
      position = at;

      // Rewrite the cache whenever it is not exactly this log's leaves, then keep appending to it.
      if (cacheFd !== undefined) closeSync(cacheFd);
      cacheFd = undefined;
      if (!cache || cache.length !== log.size * HASH_SIZE || firstCacheMismatch !== undefined) {
        const all = Buffer.allocUnsafe(log.size * HASH_SIZE);
        for (let i = 0; i < log.size; i++) all.set(log.at(i)!, i * HASH_SIZE);
        writeFileAtomicSync(files.leaves, all, LEDGER_FILE_MODE);
      }
      cacheFd = openSync(files.leaves, 'a');

      const rootText = (() => {
        try {
          return readFileSync(files.root, 'utf8');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
          throw err;
        }
      })();
      rootFileStale = last !== undefined && rootText !== formatRootFile(last.head);
      loaded = true;
      return source;
    },

    append(lines) {
      if (!loaded) throw new VaultMeshError('LEDGER_NOT_LOADED', 'ledger.append before load()', { status: 500 });
      if (lines.length === 0) return;
      writeCache(lines.map(addLine));
    },

    publishHead() {
      const run = queue.then(async (): Promise<SignedTreeHead | undefined> => {
        if (!loaded) throw new VaultMeshError('LEDGER_NOT_LOADED', 'ledger.publishHead before load()', { status: 500 });
        lastPublishAt = clockMs();
        // Another replica's heads first; one this replica cannot check yet (its log is behind) blocks signing, as a
        // head of a smaller tree after it would break the chain.
        if (opts.shared && !(await syncShared())) return undefined;
        if (opts.leads && !opts.leads()) return undefined;
        const size = log.size;
        if (size === (last?.head.tree_size ?? 0)) {
          if (rootFileStale && last) {
            await writeFileAtomic(files.root, formatRootFile(last.head), LEDGER_FILE_MODE);
            rootFileStale = false;
          }
          return undefined;
        }
        const head = signTreeHead(
          {
            tree_size: size,
            root_hash: toHex(log.root()),
            timestamp: now().toISOString(),
            previous_head_hash: last ? headHash(last.head) : null,
            key_id: opts.key.keyId,
          },
          opts.key,
          backend,
        );
        const entry: ChainEntry = {
          head,
          public_key: opts.key.publicKeyHex,
          consistency_proof: last ? log.consistencyProof(last.head.tree_size, size).map(toHex) : [],
        };
        const line = canonicalJson(entry);
        // The shared chain first (fenced): a deposed leader writes neither it nor its files.
        await opts.shared?.append(opts.journal as LedgerName, nextIndex(), entry, line);
        await record(entry, line);
        await opts.onHead?.(head);
        return head;
      });
      queue = run.catch(() => undefined); // a failed write must not block later ones; the caller gets the error
      return run;
    },

    sync() {
      const run = queue.then(async () => {
        if (!loaded) throw new VaultMeshError('LEDGER_NOT_LOADED', 'ledger.sync before load()', { status: 500 });
        await syncShared();
      });
      queue = run.catch(() => undefined);
      return run;
    },

    scheduleHead() {
      if (timer !== undefined) return;
      const delay = Math.max(0, lastPublishAt + minInterval - clockMs());
      timer = timers.setTimeout(() => {
        timer = undefined;
        ledger.publishHead().catch(onError);
      }, delay);
    },

    async flush() {
      if (timer !== undefined) timers.clearTimeout(timer);
      timer = undefined;
      // Background failures went to onError when they happened; this publish covers their leaves or throws.
      await ledger.publishHead();
    },

    async close() {
      if (loaded) await ledger.flush();
      if (cacheFd !== undefined) closeSync(cacheFd);
      cacheFd = undefined;
    },

    root() {
      return { tree_size: log.size, root_hash: toHex(log.root()) };
    },

    latestHead() {
      return last?.head;
    },

    inclusionProofFor(index) {
      if (!Number.isSafeInteger(index) || index < 0 || index >= log.size) {
        throw new VaultMeshError('NOT_FOUND', `no leaf ${index} in ${opts.journalFile}`, { status: 404 });
      }
      if (!last || index >= last.head.tree_size) {
        throw new VaultMeshError('NOT_YET_SIGNED', `leaf ${index} is not covered by a signed tree head yet; retry shortly`, { status: 409 });
      }
      return {
        leaf_index: index,
        tree_size: last.head.tree_size,
        leaf_hash: toHex(log.at(index)!),
        audit_path: log.inclusionProof(index, last.head.tree_size).map(toHex),
        head: last.head,
        public_key: last.public_key,
      };
    },

    indexOf(id) {
      return idIndex().get(id);
    },

    hashRange: (start, end) => log.hashRange(start, end),
    consistencyProof: (oldSize, newSize) => log.consistencyProof(oldSize, newSize),

    async leafLine(index) {
      const seq = seqs[index];
      if (seq === undefined) throw new VaultMeshError('NOT_FOUND', `no leaf ${index} in ${opts.journalFile}`, { status: 404 });
      let line: Buffer | undefined;
      await opts.store.tail(
        { afterSeq: seq - 1 },
        (entry) => {
          line = entry.line;
          return false;
        },
        { journals: [opts.journal], onCorrupt: 'skip' },
      );
      if (!line || !leafHash(line).equals(log.at(index)!)) throw ledgerError(`${opts.journalFile}:${index + 1} changed on disk since it was appended`);
      return Buffer.from(line);
    },
  };
  return ledger;
}

/** A ledger for one of the two standard journals in `dir`. */
export function createNamedLedger(name: LedgerName, opts: Omit<LedgerOptions, 'journal' | 'journalFile' | 'rootFile' | 'chainFile'>): Ledger {
  return createLedger({ ...opts, journal: name, ...LEDGER_FILES[name] });
}

/**
 * The journal's commit observer for the ledgers: routes each durable line to the ledger of its journal and
 * schedules a head. Lines of other journals are ignored.
 */
export function createLedgerObserver(ledgers: Partial<Record<LedgerName, Ledger>>): (batch: readonly Committed[]) => void {
  return (batch) => {
    for (const name of Object.keys(ledgers) as LedgerName[]) {
      const ledger = ledgers[name]!;
      const lines = batch.filter((c) => c.journal === name).map((c) => c.line);
      if (lines.length === 0) continue;
      ledger.append(lines);
      ledger.scheduleHead();
    }
  };
}
