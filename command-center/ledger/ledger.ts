/**
 * The center's Merkle ledger over one journal file (used twice: scans and commands). Every complete line of the
 * journal is a leaf (leaf bytes = the line without its newline); after each durable batch the leaves are appended
 * in O(log n), and a signed tree head, with its consistency proof from the previous head, is added to the chain
 * file and the root file is rewritten, both atomically. The formats are in docs/LEDGER.md; the pure parts
 * (schemas, head signing and hashing, ROOT.txt, segment names) are exported here for the offline CLI.
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
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, readdirSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { canonicalJson } from '../../protocol/canonical-json.js';
import { nodeCryptoBackend, type Ed25519Backend } from '../../protocol/ed25519.js';
import { VaultMeshError } from '../../protocol/errors.js';
import { fromHex, toHex } from '../../protocol/hex.js';
import { keyIdOf, type KeyPair } from '../../protocol/keys.js';
import { writeFileAtomicSync } from '../../lib/atomic-file.js';
import { HASH_SIZE, MerkleLog, leafHash } from '../../protocol/merkle.js';
import { signPayload, verifyPayload } from '../../protocol/signing.js';
import { LineSource } from '../store/journal-reader.js';
import type { Committed } from '../store/journal.js';
import { realTimers, type Timers } from '../../lib/timers.js';

// ---------------------------------------------------------------------------------------------------------------
// Formats (pure)
// ---------------------------------------------------------------------------------------------------------------

export const PROOFCHAIN_FORMAT = 'vaultmesh-proofchain/1';
/** Format tag of self-contained inclusion proofs (API `GET /api/ledger/proof/:id` and `vaultmesh ledger prove`). */
export const PROOF_BUNDLE_FORMAT = 'vaultmesh-proof-bundle/1';

/** File names of the two ledgers, all in the log dir. */
export const LEDGER_FILES = {
  scans: { journalFile: 'sovereign-scans.jsonl', rootFile: 'ROOT.txt', chainFile: 'PROOFCHAIN.json' },
  commands: { journalFile: 'commands.jsonl', rootFile: 'COMMANDS_ROOT.txt', chainFile: 'COMMANDS_PROOFCHAIN.json' },
} as const;

export type LedgerName = keyof typeof LEDGER_FILES;

/** The leaf-hash cache beside a journal: `sovereign-scans.jsonl` → `sovereign-scans.leaves`. */
export function leavesFileFor(journalFile: string): string {
  return journalFile.replace(/\.jsonl$/, '') + '.leaves';
}

const hash32 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters');

/** The signed fields of a tree head. The signature is Ed25519 over the RFC 8785 bytes of exactly this object. */
export const treeHeadSchema = z.strictObject({
  tree_size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  root_hash: hash32,
  timestamp: z.iso.datetime({ offset: true }),
  previous_head_hash: hash32.nullable(),
  key_id: z.string().regex(/^[0-9a-f]{16}$/, 'must be 16 lowercase hex characters'),
});

export const signedTreeHeadSchema = treeHeadSchema.extend({
  signature: z.string().regex(/^[0-9a-f]{128}$/, 'must be 128 lowercase hex characters'),
});

export type TreeHead = z.infer<typeof treeHeadSchema>;
export type SignedTreeHead = z.infer<typeof signedTreeHeadSchema>;

/** One element of PROOFCHAIN.json `heads`: the signed head, the key that signed it, and the proof linking it. */
export const chainEntrySchema = z.object({
  head: signedTreeHeadSchema,
  public_key: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters'),
  /** RFC 6962 consistency proof from the previous head's tree to this one; [] for the first head. */
  consistency_proof: z.array(hash32),
});

export type ChainEntry = z.infer<typeof chainEntrySchema>;

export const proofChainSchema = z.object({
  format: z.literal(PROOFCHAIN_FORMAT),
  log: z.string(),
  /** Index in the whole chain of this file's first head (absent = 0: a file written before segments existed). */
  first_index: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
  /** `headHash` of the head just before this file's first one (in an archive segment); null/absent when first_index is 0. */
  previous_head_hash: hash32.nullable().optional(),
  heads: z.array(chainEntrySchema),
});

export type ProofChain = z.infer<typeof proofChainSchema>;

/** The signed part of a head (drops the signature and anything else). */
export function unsignedHead(h: TreeHead): TreeHead {
  return { tree_size: h.tree_size, root_hash: h.root_hash, timestamp: h.timestamp, previous_head_hash: h.previous_head_hash, key_id: h.key_id };
}

/** `previous_head_hash` of the head after `h`: SHA-256 (hex) of the canonical JSON of the full signed head. */
export function headHash(h: SignedTreeHead): string {
  return createHash('sha256').update(canonicalJson({ ...unsignedHead(h), signature: h.signature })).digest('hex');
}

export function signTreeHead(head: TreeHead, key: Pick<KeyPair, 'seed'>, backend: Ed25519Backend = nodeCryptoBackend): SignedTreeHead {
  return { ...unsignedHead(head), signature: signPayload(unsignedHead(head), key, backend) };
}

/** Why a head's signature does not hold, or undefined when it does (key id bound to the key, signature valid). */
export function headSignatureProblem(entry: ChainEntry, backend: Ed25519Backend = nodeCryptoBackend): string | undefined {
  if (keyIdOf(entry.public_key) !== entry.head.key_id) return `key_id ${entry.head.key_id} is not the id of public_key ${entry.public_key}`;
  if (!verifyPayload(unsignedHead(entry.head), entry.head.signature, entry.public_key, backend)) return 'signature does not verify';
  return undefined;
}

/** Where a chain file (or archive segment) sits in the whole chain. */
export interface ChainPosition {
  /** Index of its first head in the whole chain. */
  first_index: number;
  /** `headHash` of the head before its first one; null when first_index is 0. */
  previous_head_hash: string | null;
}

/**
 * Serialises a proof chain file or archive segment: a header line (format, log, position), then one canonical JSON
 * head entry per line, so the file diffs and greps well.
 */
export function formatProofChain(log: string, entryLines: readonly string[], at: ChainPosition = { first_index: 0, previous_head_hash: null }): string {
  const header =
    `{"format":${JSON.stringify(PROOFCHAIN_FORMAT)},"log":${JSON.stringify(log)},` +
    `"first_index":${at.first_index},"previous_head_hash":${JSON.stringify(at.previous_head_hash)},"heads":[`;
  return entryLines.length === 0 ? `${header}]}\n` : `${header}\n${entryLines.join(',\n')}\n]}\n`;
}

/** The position of a parsed chain file (defaults for files written before segments existed). */
export function chainPosition(chain: ProofChain): ChainPosition {
  return { first_index: chain.first_index ?? 0, previous_head_hash: chain.previous_head_hash ?? null };
}

/** Archive segment of a chain file holding heads first..last (inclusive): `PROOFCHAIN.json` → `PROOFCHAIN-0-999.json`. */
export function archiveFileName(chainFile: string, first: number, last: number): string {
  return `${chainFile.replace(/\.json$/, '')}-${first}-${last}.json`;
}

export interface ArchiveSegment {
  file: string;
  first: number;
  last: number;
}

/** The archive segments of a chain file in `dir`, in chain order (by first, then last index); [] if there are none. */
export function listArchiveSegments(dir: string, chainFile: string): ArchiveSegment[] {
  const base = chainFile.replace(/\.json$/, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`^${base}-(0|[1-9][0-9]{0,15})-(0|[1-9][0-9]{0,15})\\.json$`);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: ArchiveSegment[] = [];
  for (const file of names) {
    const m = re.exec(file);
    if (m) out.push({ file, first: Number(m[1]), last: Number(m[2]) });
  }
  return out.sort((a, b) => a.first - b.first || a.last - b.last);
}

/** Parses PROOFCHAIN.json text; throws VaultMeshError LEDGER_CORRUPT naming the problem. */
export function parseProofChain(text: string, source = 'PROOFCHAIN.json'): ProofChain {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new VaultMeshError('LEDGER_CORRUPT', `${source} is not JSON`, { cause, status: 500 });
  }
  const parsed = proofChainSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new VaultMeshError('LEDGER_CORRUPT', `${source}: ${issue.path.join('.')}: ${issue.message}`, { status: 500 });
  }
  return parsed.data;
}

/** Reads a chain file; undefined when it does not exist yet. */
export function readProofChain(path: string): ProofChain | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parseProofChain(text, basename(path));
}

export interface LedgerRoot {
  tree_size: number;
  root_hash: string;
}

/** ROOT.txt: exactly two lines, `tree_size <decimal>` and `root_hash <64 lowercase hex>`, each ending in `\n`. */
export function formatRootFile(root: LedgerRoot): string {
  return `tree_size ${root.tree_size}\nroot_hash ${root.root_hash}\n`;
}

/** Parses ROOT.txt; undefined if it is not exactly the format above. */
export function parseRootFile(text: string): LedgerRoot | undefined {
  const m = /^tree_size (0|[1-9][0-9]{0,15})\nroot_hash ([0-9a-f]{64})\n$/.exec(text);
  if (!m) return undefined;
  const tree_size = Number(m[1]);
  return Number.isSafeInteger(tree_size) ? { tree_size, root_hash: m[2]! } : undefined;
}

const ID_KEY = Buffer.from(',"id":"');
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/**
 * The envelope `id` of a journal line. Lines are RFC 8785 canonical envelopes, so keys are sorted and the top-level
 * `"id"` is the last `,"id":"` in the line: only scalars (kind, node_id, on_behalf_of, seq, ts, v) follow it, and
 * a raw `"` cannot occur inside a JSON string. That saves a JSON.parse per line when loading a million lines; a
 * line not in that shape falls back to JSON.parse.
 */
export function envelopeIdOf(line: Buffer): string | undefined {
  const at = line.lastIndexOf(ID_KEY);
  if (at >= 0) {
    const start = at + ID_KEY.length;
    const end = line.indexOf(0x22, start);
    if (end > start) {
      const id = line.toString('latin1', start, end);
      if (ID_RE.test(id)) return id;
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(line.toString('utf8'));
  } catch {
    return undefined; // not JSON: no id to index (verify reports such lines)
  }
  const id = (value as { id?: unknown } | null)?.id;
  return typeof id === 'string' ? id : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// The ledger (IO)
// ---------------------------------------------------------------------------------------------------------------

export interface LedgerOptions {
  dir: string;
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
  /** Called after each new head is written (chain, then root file): the C2SP checkpoint is made from it. */
  onHead?: (head: SignedTreeHead) => void;
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

export interface Ledger {
  /** Builds the tree from the journal (after torn-tail recovery) and checks it against the last signed head. */
  load(): Promise<void>;
  /** Lines of this journal just made durable, in file order, without newlines. O(log n) per line. */
  append(lines: readonly Buffer[]): void;
  /** Signs and writes a new head if the log grew since the last one. Calls are serialised. */
  publishHead(): Promise<SignedTreeHead | undefined>;
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
  const trusted = new Set([opts.key.publicKeyHex, ...(opts.trustedKeys ?? []).map((k) => k.toLowerCase())]);
  const files = {
    journal: join(opts.dir, opts.journalFile),
    root: join(opts.dir, opts.rootFile),
    chain: join(opts.dir, opts.chainFile),
    leaves: join(opts.dir, leavesFileFor(opts.journalFile)),
  };

  let log = new MerkleLog();
  let ids = new Map<string, number>();
  let offsets: number[] = []; // byte offset of each line in the journal, for leafLine()
  let endOffset = 0;
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
    offsets.push(endOffset);
    endOffset += bytes.length + 1;
    const id = envelopeIdOf(bytes);
    // Ids are unique by contract; if one repeats, the first (older) leaf keeps it.
    if (id !== undefined && !ids.has(id)) ids.set(id, index);
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
  const writeArchiveSegment = (name: string, text: string): void => {
    const path = join(opts.dir, name);
    let existing: string | undefined;
    try {
      existing = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (existing === undefined) writeFileAtomicSync(path, text, 0o444);
    else if (existing !== text) throw ledgerError(`${name} already exists with other heads; refusing to overwrite an archive segment (run: vaultmesh ledger verify)`);
  };

  const ledger: Ledger = {
    files,
    get size() {
      return log.size;
    },

    async load() {
      const chain = readProofChain(files.chain);
      if (chain && chain.log !== opts.journalFile) throw ledgerError(`${opts.chainFile} is the chain of ${chain.log}, not ${opts.journalFile}`);
      const at = chain ? chainPosition(chain) : { first_index: 0, previous_head_hash: null };
      if (!chain) {
        const archived = listArchiveSegments(opts.dir, opts.chainFile);
        if (archived.length > 0) throw ledgerError(`${opts.chainFile} is missing but its archive segments (${archived.at(-1)!.file}, …) exist: restore it from a backup`);
      } else {
        if (chain.heads.length === 0 && at.first_index > 0) throw ledgerError(`${opts.chainFile} has no heads but starts at head #${at.first_index}`);
        const firstPrev = chain.heads[0]?.head.previous_head_hash;
        if (firstPrev !== undefined && firstPrev !== at.previous_head_hash) {
          throw ledgerError(`${opts.chainFile}: previous_head_hash ${at.previous_head_hash} is not its first head's (${firstPrev})`);
        }
      }
      let cache: Buffer | undefined;
      try {
        cache = readFileSync(files.leaves);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      const cached = cache ? Math.floor(cache.length / HASH_SIZE) : 0;

      log = new MerkleLog();
      ids = new Map();
      offsets = [];
      endOffset = 0;
      let firstCacheMismatch: number | undefined;
      const source = new LineSource(files.journal);
      try {
        await source.open();
        for (let batch = await source.nextBatch(); batch; batch = await source.nextBatch()) {
          for (const line of batch) {
            const i = log.size;
            const h = addLine(line.bytes);
            if (firstCacheMismatch === undefined && i < cached && cache!.compare(h, 0, HASH_SIZE, i * HASH_SIZE, (i + 1) * HASH_SIZE) !== 0) {
              firstCacheMismatch = i;
            }
          }
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      } finally {
        await source.close();
      }

      const heads = chain?.heads ?? [];
      last = heads.at(-1);
      if (last) {
        const { tree_size, root_hash } = last.head;
        const where = `head #${at.first_index + heads.length - 1} in ${opts.chainFile}`;
        if (log.size < tree_size) {
          throw ledgerError(`${opts.journalFile} has ${log.size} lines but ${where} signs ${tree_size}: the log was truncated or lines were deleted`);
        }
        const problem = headSignatureProblem(last, backend);
        if (problem) throw ledgerError(`${where}: ${problem}`);
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
        writeFileAtomicSync(files.leaves, all, 0o644);
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
        const size = log.size;
        if (size === (last?.head.tree_size ?? 0)) {
          if (rootFileStale && last) {
            writeFileAtomicSync(files.root, formatRootFile(last.head), 0o644);
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
        let nextLines: string[];
        let nextPosition = position;
        if (entryLines.length >= maxChainHeads) {
          // Full: archive its heads first (durably), then start the chain file after them. A crash in between
          // leaves them in both files, which readers tolerate; the reverse order could lose them.
          const lastIndex = position.first_index + entryLines.length - 1;
          writeArchiveSegment(archiveFileName(opts.chainFile, position.first_index, lastIndex), formatProofChain(opts.journalFile, entryLines, position));
          nextLines = [line];
          nextPosition = { first_index: lastIndex + 1, previous_head_hash: headHash(last!.head) };
        } else {
          nextLines = [...entryLines, line];
        }
        // The chain first: ROOT.txt must never name a root that no signed head covers.
        writeFileAtomicSync(files.chain, formatProofChain(opts.journalFile, nextLines, nextPosition), 0o644);
        entryLines = nextLines;
        position = nextPosition;
        last = entry;
        rootFileStale = true;
        writeFileAtomicSync(files.root, formatRootFile(head), 0o644);
        rootFileStale = false;
        opts.onHead?.(head);
        return head;
      });
      queue = run.catch(() => undefined); // a failed write must not block later ones; the caller gets the error
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
      return ids.get(id);
    },

    hashRange: (start, end) => log.hashRange(start, end),
    consistencyProof: (oldSize, newSize) => log.consistencyProof(oldSize, newSize),

    async leafLine(index) {
      const offset = offsets[index];
      if (offset === undefined) throw new VaultMeshError('NOT_FOUND', `no leaf ${index} in ${opts.journalFile}`, { status: 404 });
      const length = (offsets[index + 1] ?? endOffset) - offset - 1;
      const fh = await open(files.journal, 'r');
      try {
        const buf = Buffer.alloc(length);
        const { bytesRead } = await fh.read(buf, 0, length, offset);
        const line = buf.subarray(0, bytesRead);
        if (bytesRead !== length || !leafHash(line).equals(log.at(index)!)) {
          throw ledgerError(`${opts.journalFile}:${index + 1} changed on disk since it was appended`);
        }
        return line;
      } finally {
        await fh.close();
      }
    },
  };
  return ledger;
}

/** A ledger for one of the two standard journals in `dir`. */
export function createNamedLedger(name: LedgerName, opts: Omit<LedgerOptions, 'journalFile' | 'rootFile' | 'chainFile'>): Ledger {
  return createLedger({ ...opts, ...LEDGER_FILES[name] });
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

/** Parses a lowercase-hex hash list (proof) into bytes; undefined if any element is malformed. */
export function hashesFromHex(list: readonly string[]): Buffer[] | undefined {
  const out: Buffer[] = [];
  for (const h of list) {
    const b = fromHex(h, HASH_SIZE);
    if (!b) return undefined;
    out.push(b);
  }
  return out;
}
