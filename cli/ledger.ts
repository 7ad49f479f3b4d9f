/**
 * Offline ledger tools over a log dir (no server): the root of a journal, a full verification (every line rehashed,
 * every head's signature, chain link and consistency proof across the archive segments and the chain file, each
 * head's root against the log, ROOT.txt), a
 * self-contained proof bundle for one envelope, and the check of such a bundle with no other input.
 * Library functions returning data; the cac layer in cli/commands/ledger.ts renders them.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  LEDGER_FILES,
  buildProofBundle,
  checkProofBundle,
  envelopeIdOf,
  envelopeSeqOf,
  headSignatureProblem,
  leavesFileFor,
  parseRootFile,
  type LedgerName,
  type LedgerRoot,
  type ProofBundle,
  type ProofChain,
  type SignedTreeHead,
} from '../protocol/ledger-files.js';
import { checkProofChain, type ChainFileInput } from '../protocol/proof-chain-check.js';
import { LineSource } from '../lib/journal/index.js';
import { listArchiveSegments, readProofChain } from '../lib/ledger-files.js';
import type { Ed25519Backend } from '../protocol/ed25519.js';
import { VaultMeshError, isVaultMeshError } from '../protocol/errors.js';
import { toHex } from '../protocol/hex.js';
import { keyIdOf } from '../protocol/keys.js';
import { EMPTY_ROOT, HASH_SIZE, MerkleFrontier, MerkleLog, leafHash } from '../protocol/merkle.js';

export type LedgerWhich = LedgerName;

function usage(message: string): VaultMeshError {
  return new VaultMeshError('USAGE', message);
}

function paths(dir: string, which: LedgerWhich) {
  if (!(which in LEDGER_FILES)) throw usage(`unknown ledger "${String(which)}": use scans or commands`);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw usage(`log dir ${dir} does not exist (use --dir or VAULTMESH_LOG_DIR)`);
  const f = LEDGER_FILES[which];
  return {
    names: { ...f, leavesFile: leavesFileFor(f.journalFile) },
    journal: join(dir, f.journalFile),
    root: join(dir, f.rootFile),
    chain: join(dir, f.chainFile),
    leaves: join(dir, leavesFileFor(f.journalFile)),
  };
}

/** Visits every complete line of a journal (a missing file has none). Returns the torn tail's line number, if any. */
async function forEachLine(file: string, visit: (bytes: Buffer, lineNo: number) => void, onBatch?: (bytesDone: number) => void): Promise<{ tornLine?: number }> {
  const source = new LineSource(file);
  try {
    await source.open();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  try {
    for (let batch = await source.nextBatch(); batch; batch = await source.nextBatch()) {
      for (const line of batch) visit(line.bytes, line.lineNo);
      const lastLine = batch[batch.length - 1]!;
      onBatch?.(lastLine.offset + lastLine.bytes.length + 1);
    }
  } finally {
    await source.close();
  }
  return source.tail ? { tornLine: source.tail.lineNo } : {};
}

// ---------------------------------------------------------------------------------------------------------------
// root
// ---------------------------------------------------------------------------------------------------------------

/** The Merkle root of every complete line of the journal, recomputed from the log (not read from ROOT.txt). */
export async function ledgerRoot(dir: string, which: LedgerWhich = 'scans'): Promise<LedgerRoot> {
  const p = paths(dir, which);
  const frontier = new MerkleFrontier();
  await forEachLine(p.journal, (bytes) => frontier.append(leafHash(bytes)));
  return { tree_size: frontier.size, root_hash: toHex(frontier.root()) };
}

// ---------------------------------------------------------------------------------------------------------------
// verify
// ---------------------------------------------------------------------------------------------------------------

export interface VerifyProblem {
  /** `line`: a journal line (file:line); `head`: a head of the chain; `chain`: a chain file or segment; `root_file`. */
  where: 'line' | 'head' | 'chain' | 'root_file';
  /** The journal, or the chain file / archive segment holding the head. */
  file: string;
  /** 1-based line number in `file` (for `line`). */
  line?: number;
  /** 0-based index of the head in the whole chain, archive segments included (for `head`). */
  head_index?: number;
  message: string;
}

export interface VerifyProgress {
  bytes: number;
  total_bytes: number;
  lines: number;
}

export interface VerifyOptions {
  onProgress?: (p: VerifyProgress) => void;
  /** Expected center public key (hex): every head must be signed by it. */
  pubkey?: string;
  /** Lines after the last signed head are a warning, not a failure (a live center signs within seconds). */
  allowUnsignedTail?: boolean;
  backend?: Ed25519Backend;
}

export interface VerifyResult {
  ok: boolean;
  log: string;
  /** Recomputed from the log. */
  tree_size: number;
  root_hash: string;
  bytes: number;
  /** Heads read, archive segments and chain file together (a head present in both counts once). */
  heads: number;
  /** Archive segments read (`PROOFCHAIN-<first>-<last>.json`). */
  segments: number;
  /** tree_size of the last head whose signature holds (0 if none). */
  signed_size: number;
  /** Sorted: lines by number, then heads by index, then files. The first is the one to report. */
  problems: VerifyProblem[];
  warnings: string[];
  elapsed_ms: number;
}

const MAX_PROBLEMS = 100;
function sortProblems(list: VerifyProblem[]): VerifyProblem[] {
  const rank = (p: VerifyProblem): number[] =>
    p.where === 'line' ? [0, p.line ?? 0] : p.where === 'head' ? [1, p.head_index ?? 0] : p.where === 'chain' ? [2, 0] : [3, 0];
  return list
    .map((p, i) => ({ p, k: [...rank(p), i] }))
    .sort((a, b) => a.k[0]! - b.k[0]! || a.k[1]! - b.k[1]! || a.k[2]! - b.k[2]!)
    .map((x) => x.p);
}

/**
 * The chain alone, through the one checker the center's ledger load uses too (protocol/proof-chain-check.ts): the
 * archive segments in order, then the chain file, one file in memory at a time.
 */
function checkChain(dir: string, chainFile: string, journalFile: string, opts: VerifyOptions, problems: VerifyProblem[]) {
  const archives = listArchiveSegments(dir, chainFile);
  function* files(): Generator<ChainFileInput> {
    for (const a of archives) yield { file: a.file, name: { first: a.first, last: a.last }, ...readChain(join(dir, a.file)) };
    if (existsSync(join(dir, chainFile))) yield { file: chainFile, ...readChain(join(dir, chainFile)) };
  }
  if (!existsSync(join(dir, chainFile)) && archives.length > 0) {
    problems.push({ where: 'chain', file: chainFile, message: `${chainFile} is missing but archive segments exist: the newest heads are gone` });
  }
  const result = checkProofChain(files(), { journalFile, chainFile, ...(opts.pubkey !== undefined ? { pubkey: opts.pubkey } : {}), ...(opts.backend ? { backend: opts.backend } : {}) });
  problems.push(...result.problems);
  return { ...result, segments: archives.length };
}

/** A chain file read for the checker: parsed, or why it could not be. */
function readChain(path: string): { chain?: ProofChain; error?: string } {
  try {
    const chain = readProofChain(path);
    return chain ? { chain } : {};
  } catch (err) {
    if (!isVaultMeshError(err)) throw err;
    return { error: err.message };
  }
}

/** Recomputes everything from the log and checks the chain and root files against it. */
export async function ledgerVerify(dir: string, which: LedgerWhich = 'scans', opts: VerifyOptions = {}): Promise<VerifyResult> {
  const started = performance.now();
  const p = paths(dir, which);
  const { journalFile, chainFile, rootFile: rootFileName } = p.names;
  const problems: VerifyProblem[] = [];
  const warnings: string[] = [];

  const { table, heads, segments, last } = checkChain(dir, chainFile, journalFile, opts, problems);
  const headIndexes = (): number[] => table.indexes();

  // One streaming pass: leaf hashes into a frontier, roots taken at every head size, line-level checks, and a
  // comparison with the leaf cache (used below only if the cache proves to hold the signed leaves).
  const wanted = new Set(headIndexes().map((i) => table.size(i)));
  const rootFileText = existsSync(p.root) ? readFileSync(p.root, 'utf8') : undefined;
  const rootRecord = rootFileText === undefined ? undefined : parseRootFile(rootFileText);
  if (rootRecord) wanted.add(rootRecord.tree_size);
  const rootsAt = new Map<number, string>([[0, toHex(EMPTY_ROOT)]]);
  const cache = existsSync(p.leaves) ? readFileSync(p.leaves) : undefined;
  const cached = cache ? Math.floor(cache.length / HASH_SIZE) : 0;
  let firstCacheMismatch: number | undefined;
  const frontier = new MerkleFrontier();
  const totalBytes = existsSync(p.journal) ? statSync(p.journal).size : 0;
  let lastSeq = 0;
  let bytesDone = 0;
  const lineProblem = (line: number, message: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push({ where: 'line', file: journalFile, line, message: `${journalFile}:${line}: ${message}` });
  };

  const { tornLine } = await forEachLine(
    p.journal,
    (bytes, lineNo) => {
      const h = leafHash(bytes);
      const i = frontier.size;
      frontier.append(h);
      if (wanted.has(frontier.size)) rootsAt.set(frontier.size, toHex(frontier.root()));
      if (firstCacheMismatch === undefined && i < cached && cache!.compare(h, 0, HASH_SIZE, i * HASH_SIZE, (i + 1) * HASH_SIZE) !== 0) firstCacheMismatch = i;
      const seq = envelopeSeqOf(bytes);
      if (seq === undefined || envelopeIdOf(bytes) === undefined) lineProblem(lineNo, 'not an envelope (no id or seq)');
      else if (seq <= lastSeq) lineProblem(lineNo, `seq ${seq} does not increase (previous ${lastSeq}): lines were reordered or inserted`);
      if (seq !== undefined) lastSeq = Math.max(lastSeq, seq);
    },
    (done) => {
      bytesDone = done;
      opts.onProgress?.({ bytes: done, total_bytes: totalBytes, lines: frontier.size });
    },
  );
  const n = frontier.size;
  if (tornLine !== undefined) warnings.push(`${journalFile}:${tornLine}: incomplete last line (no newline) is not part of the ledger`);

  // Each head's root against the log prefix it signs.
  let firstBadHead: number | undefined;
  for (const i of headIndexes()) {
    const tree_size = table.size(i);
    let message: string | undefined;
    if (tree_size > n) message = `signs ${tree_size} lines but ${journalFile} has ${n}: the log was truncated or lines were deleted`;
    else if (rootsAt.get(tree_size) !== table.root(i)) message = `root_hash does not match lines 1..${tree_size} of ${journalFile}: a line was changed, inserted, deleted or moved`;
    if (message) {
      firstBadHead ??= i;
      const file = table.file(i);
      problems.push({ where: 'head', file, head_index: i, message: `head #${i} (tree_size ${tree_size})${file === chainFile ? '' : ` in ${file}`}: ${message}` });
    }
  }

  // Name the line: the cache, if its prefix root equals a validly signed head's root, holds the leaves the center
  // signed, so the first line whose hash differs from it is the first changed one.
  if (firstBadHead !== undefined && cache) {
    const cacheRoots = new Map<number, string>();
    const sizes = wanted;
    const f = new MerkleFrontier();
    for (let i = 0; i < cached; i++) {
      f.append(cache.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE));
      if (sizes.has(f.size)) cacheRoots.set(f.size, toHex(f.root()));
    }
    let authentic = 0;
    for (const i of headIndexes()) {
      if (table.signatureOk(i) && cacheRoots.get(table.size(i)) === table.root(i)) authentic = Math.max(authentic, table.size(i));
    }
    if (firstCacheMismatch !== undefined && firstCacheMismatch < authentic) {
      lineProblem(firstCacheMismatch + 1, `differs from the line signed at this position (changed, inserted, deleted or moved)`);
    } else if (firstCacheMismatch === undefined && n < authentic) {
      lineProblem(n + 1, `missing: signed lines ${n + 1}..${authentic} are gone (the log was truncated)`);
    }
  }

  // Lines no valid head covers.
  let signedSize = 0;
  for (const i of headIndexes()) if (table.signatureOk(i)) signedSize = Math.max(signedSize, table.size(i));
  if (n > signedSize) {
    const message = `lines ${signedSize + 1}..${n} are not covered by any signed head`;
    if (opts.allowUnsignedTail) warnings.push(`${journalFile}: ${message}`);
    else lineProblem(signedSize + 1, `${message} (appended after the last head, or forged)`);
  }

  // ROOT.txt: the last head's size and root, and the log's root at that size.
  const lastHead = last?.head;
  const rootProblem = (message: string) => problems.push({ where: 'root_file', file: rootFileName, message: `${rootFileName}: ${message}` });
  if (rootFileText === undefined) {
    if (lastHead) rootProblem('missing');
  } else if (!rootRecord) {
    rootProblem('not the two lines "tree_size N" / "root_hash HEX"');
  } else {
    if (!lastHead || rootRecord.tree_size !== lastHead.tree_size || rootRecord.root_hash !== lastHead.root_hash) {
      rootProblem(`tree_size ${rootRecord.tree_size} does not match the last signed head${lastHead ? ` (tree_size ${lastHead.tree_size})` : ' (there is none)'}`);
    }
    if (rootRecord.tree_size > n || rootsAt.get(rootRecord.tree_size) !== rootRecord.root_hash) {
      rootProblem(`root_hash does not match the first ${rootRecord.tree_size} lines of ${journalFile}`);
    }
  }

  const sorted = sortProblems(problems);
  return {
    ok: sorted.length === 0,
    log: journalFile,
    tree_size: n,
    root_hash: toHex(frontier.root()),
    bytes: bytesDone,
    heads,
    segments,
    signed_size: signedSize,
    problems: sorted,
    warnings,
    elapsed_ms: Math.round(performance.now() - started),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// prove / check
// ---------------------------------------------------------------------------------------------------------------


export { proofBundleSchema, type ProofBundle } from '../protocol/ledger-files.js';

/** Which envelope to prove: its id, or its seq (what `vaultmesh logs view` shows). */
export type ProveTarget = string | { seq: number };

/**
 * Builds the proof bundle of one envelope (by id or by seq) against the latest signed head; refuses a log that
 * fails its head.
 */
export async function ledgerProve(dir: string, target: ProveTarget, opts: { which?: LedgerWhich; backend?: Ed25519Backend } = {}): Promise<ProofBundle> {
  const which = opts.which ?? 'scans';
  const p = paths(dir, which);
  const { journalFile, chainFile } = p.names;
  const chain = readProofChain(p.chain);
  const entry = chain?.heads.at(-1);
  if (!entry) throw new VaultMeshError('NOT_YET_SIGNED', `${chainFile} has no signed head yet`);
  const problem = headSignatureProblem(entry, opts.backend);
  if (problem) throw new VaultMeshError('LEDGER_MISMATCH', `${chainFile}: last head: ${problem}`);
  const size = entry.head.tree_size;

  const log = new MerkleLog();
  let found: { index: number; line: Buffer } | undefined;
  const matches = typeof target === 'string' ? (bytes: Buffer) => envelopeIdOf(bytes) === target : (bytes: Buffer) => envelopeSeqOf(bytes) === target.seq;
  const id = typeof target === 'string' ? target : `seq ${target.seq}`;
  await forEachLine(p.journal, (bytes) => {
    if (!found && matches(bytes)) found = { index: log.size, line: Buffer.from(bytes) };
    if (log.size < size) log.append(leafHash(bytes));
  });
  if (!found) {
    // Seqs run across all journals: a seq of a heartbeat or a note is in no ledger, one of a command in the other.
    if (typeof target !== 'string') throw new VaultMeshError('NOT_FOUND', `no envelope with seq ${target.seq} in ${journalFile} (seqs are shared by every journal: is it in ${which === 'scans' ? '--log commands' : '--log scans'}, or not a ledger kind?)`);
    throw new VaultMeshError('NOT_FOUND', `no envelope with id ${id} in ${journalFile}`);
  }
  if (found.index >= size) throw new VaultMeshError('NOT_YET_SIGNED', `${id} (${journalFile}:${found.index + 1}) is not covered by a signed head yet; retry once the center publishes one`);
  if (log.size < size || toHex(log.root()) !== entry.head.root_hash) {
    throw new VaultMeshError('LEDGER_MISMATCH', `${journalFile} does not match the last head in ${chainFile}; run: vaultmesh ledger verify`);
  }
  return buildProofBundle({ log: journalFile, leafLine: found.line, leafIndex: found.index, auditPath: log.inclusionProof(found.index, size), head: entry.head, publicKey: entry.public_key });
}

export interface CheckResult {
  ok: boolean;
  /** Why the bundle fails (empty when ok). */
  problems: string[];
  leaf_index?: number;
  tree_size?: number;
  root_hash?: string;
  key_id?: string;
  timestamp?: string;
  /** The envelope's id/kind/node_id/seq/ts when the line is an envelope. */
  envelope?: { id?: unknown; kind?: unknown; node_id?: unknown; seq?: unknown; ts?: unknown };
  /** A command signed after m-of-n approval: who proposed it and who approved it, as the proven line says. */
  approval?: { proposed_by: unknown; approvals: Array<{ by: unknown; at: unknown; seq: unknown }> };
}

/** Verifies a proof bundle with no other input (optionally pinning the center's public key). */
export function ledgerCheck(bundle: unknown, opts: { pubkey?: string; backend?: Ed25519Backend } = {}): CheckResult {
  const { problems, bundle: b } = checkProofBundle(bundle, opts);
  if (!b) return { ok: false, problems };
  let envelope: CheckResult['envelope'];
  let approval: CheckResult['approval'];
  try {
    const v = JSON.parse(b.leaf_line) as Record<string, unknown>;
    envelope = { id: v.id, kind: v.kind, node_id: v.node_id, seq: v.seq, ts: v.ts };
    const body = v.body as { event?: unknown; proposed_by?: unknown; approvals?: unknown } | undefined;
    if (v.kind === 'command' && body?.event === 'issued' && Array.isArray(body.approvals)) {
      // The approval that met the threshold is this very line: its seq is the line's.
      approval = { proposed_by: body.proposed_by, approvals: (body.approvals as Array<Record<string, unknown>>).map((a) => ({ by: a.by, at: a.at, seq: a.seq ?? v.seq })) };
    }
  } catch {
    envelope = undefined; // the proof is about bytes; a non-JSON line can still be proven, it just has no summary
  }
  return {
    ok: problems.length === 0,
    problems,
    leaf_index: b.leaf_index,
    tree_size: b.head.tree_size,
    root_hash: b.head.root_hash,
    key_id: keyIdOf(b.public_key),
    timestamp: b.head.timestamp,
    ...(envelope ? { envelope } : {}),
    ...(approval ? { approval } : {}),
  };
}

/** Reads a bundle file as JSON (schema checks happen in ledgerCheck). */
export function readBundleFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw usage(`cannot read bundle ${file}${code ? ` (${code})` : ''}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new VaultMeshError('BAD_BUNDLE', `${file} is not JSON`);
  }
}

export type { SignedTreeHead };
export { PROOF_BUNDLE_FORMAT } from '../protocol/ledger-files.js';
