/**
 * The one checker of a proof chain (PROOFCHAIN.json and its archive segments, docs/LEDGER.md), shared by the
 * center's ledger load and `vaultmesh ledger verify`, and usable by any third-party verifier. Pure: the caller reads
 * the files and hands them over in chain order (archive segments by index, then the chain file), one at a time.
 *
 * Per file: the schema was checked by the parser; the log it belongs to, its position against its name, its
 * `previous_head_hash` against its first head. Per head: its signature (key id bound to the key), the pinned key,
 * the hash link to the head before, a growing tree size and the consistency proof from the previous head. Across
 * files: gaps (a deleted segment) and duplicates (a crash between archiving and rewriting the chain file leaves
 * heads in both; they must be identical). Each head's root against the log is the caller's part.
 */
import { nodeCryptoBackend, type Ed25519Backend } from './ed25519.js';
import { fromHex } from './hex.js';
import { HASH_SIZE, verifyConsistency } from './merkle.js';
import { chainPosition, hashesFromHex, headHash, headSignatureProblem, type ChainEntry, type ProofChain } from './ledger-files.js';

export interface ChainProblem {
  /** `chain`: a chain file or segment as a whole; `head`: one head. */
  where: 'chain' | 'head';
  /** The chain file or archive segment. */
  file: string;
  /** 0-based index of the head in the whole chain (for `head`). */
  head_index?: number;
  message: string;
}

/** One chain file or archive segment, parsed (or why it could not be); `name` is the range its file name claims. */
export interface ChainFileInput {
  file: string;
  name?: { first: number; last: number };
  chain?: ProofChain;
  error?: string;
}

export interface ChainCheckOptions {
  /** The journal file the chain must belong to (its `log`). */
  journalFile: string;
  chainFile: string;
  /** Every head must be signed by this public key (hex), or by one of a comma-separated list (the keys of a rotation). */
  pubkey?: string;
  backend?: Ed25519Backend;
  /**
   * 'genesis' (default): the files hold the chain from head #0, so missing heads before the first file are a gap.
   * 'first-file': the first file starts where it says (the center reads only its chain file; the archive segments
   * before it are `vaultmesh ledger verify`'s business), and its first head's link is the file's declared one.
   */
  start?: 'genesis' | 'first-file';
  /**
   * 'every' (default) verifies each head's signature. 'last' verifies only the last one: each head commits to the
   * whole head before it (`previous_head_hash`, signature included), so with every link checked, one valid signature
   * at the end authenticates the chain. The center starts with this (1,000 Ed25519 verifications at start-up cost
   * about as much as the rest of its ledger load); `vaultmesh ledger verify` checks every one.
   */
  signatures?: 'every' | 'last';
}

/** Growable packed storage: per head, the tree size, two 32-byte hashes and a state byte (~80 bytes a head). */
export class HeadTable {
  /** Index (in the whole chain) of the first slot. */
  base = 0;
  /** Index one past the last head pushed. */
  end = 0;
  private sizes = new Float64Array(1024);
  private state = new Uint8Array(1024); // 0 missing, 1 signature fails, 2 signature holds
  private roots = Buffer.alloc(1024 * HASH_SIZE);
  private hashes = Buffer.alloc(1024 * HASH_SIZE);
  private fileIds = new Uint32Array(1024);
  private fileNames: string[] = [];

  private grow(): void {
    const cap = this.sizes.length * 2;
    const sizes = new Float64Array(cap);
    sizes.set(this.sizes);
    const state = new Uint8Array(cap);
    state.set(this.state);
    const roots = Buffer.alloc(cap * HASH_SIZE);
    this.roots.copy(roots);
    const hashes = Buffer.alloc(cap * HASH_SIZE);
    this.hashes.copy(hashes);
    const fileIds = new Uint32Array(cap);
    fileIds.set(this.fileIds);
    Object.assign(this, { sizes, state, roots, hashes, fileIds });
  }

  /** Appends head #end (undefined: a missing head, in a gap). */
  push(entry: ChainEntry | undefined, signatureOk = false, file = ''): void {
    const i = this.end++ - this.base;
    if (i === this.sizes.length) this.grow();
    if (!entry) return;
    if (this.fileNames.at(-1) !== file) this.fileNames.push(file);
    this.fileIds[i] = this.fileNames.length - 1;
    this.sizes[i] = entry.head.tree_size;
    this.state[i] = signatureOk ? 2 : 1;
    this.roots.write(entry.head.root_hash, i * HASH_SIZE, 'hex');
    this.hashes.write(headHash(entry.head), i * HASH_SIZE, 'hex');
  }

  /** The chain indexes of the heads present, in order. */
  indexes(): number[] {
    const out: number[] = [];
    for (let i = this.base; i < this.end; i++) if (this.present(i)) out.push(i);
    return out;
  }
  present(i: number): boolean {
    return i >= this.base && i < this.end && this.state[i - this.base] !== 0;
  }
  signatureOk(i: number): boolean {
    return this.state[i - this.base] === 2;
  }
  size(i: number): number {
    return this.sizes[i - this.base]!;
  }
  root(i: number): string {
    return this.roots.toString('hex', (i - this.base) * HASH_SIZE, (i - this.base + 1) * HASH_SIZE);
  }
  hash(i: number): string {
    return this.hashes.toString('hex', (i - this.base) * HASH_SIZE, (i - this.base + 1) * HASH_SIZE);
  }
  /** The chain file or archive segment the head was read from. */
  file(i: number): string {
    return this.fileNames[this.fileIds[i - this.base]!]!;
  }
}

export interface ChainCheckResult {
  table: HeadTable;
  /** Heads read (a head present in two files counts once). */
  heads: number;
  /** The last head read (undefined when there is none). */
  last?: ChainEntry;
  problems: ChainProblem[];
}

export function checkProofChain(files: Iterable<ChainFileInput>, opts: ChainCheckOptions): ChainCheckResult {
  const backend = opts.backend ?? nodeCryptoBackend;
  const pinned = opts.pubkey?.split(',').map((k) => k.trim().toLowerCase());
  const { chainFile, journalFile } = opts;
  const problems: ChainProblem[] = [];
  const table = new HeadTable();
  let heads = 0;
  let first = true;
  let prev: ChainEntry | 'gap' | undefined; // the head before the next new index ('gap': not known)
  let lastFile = '';
  for (const { file, name, chain, error } of files) {
    if (error !== undefined) problems.push({ where: 'chain', file, message: error });
    if (!chain) continue;
    const fileProblem = (message: string) => problems.push({ where: 'chain', file, message: `${file}: ${message}` });
    const at = chainPosition(chain);
    if (first && opts.start === 'first-file') {
      table.base = table.end = at.first_index;
      if (at.first_index > 0) {
        if (chain.heads.length === 0) fileProblem(`has no heads but starts at head #${at.first_index}`);
        prev = 'gap'; // the head before is in an archive segment this check does not read
      }
    }
    first = false;
    if (chain.log !== journalFile) fileProblem(`chain is for ${chain.log}, not ${journalFile}`);
    if (name && (at.first_index !== name.first || at.first_index + chain.heads.length - 1 !== name.last)) {
      fileProblem(`holds heads #${at.first_index}..#${at.first_index + chain.heads.length - 1}, not the #${name.first}..#${name.last} its name says`);
    }
    const firstPrev = chain.heads[0]?.head.previous_head_hash;
    if (firstPrev !== undefined && firstPrev !== at.previous_head_hash) fileProblem(`previous_head_hash ${at.previous_head_hash} is not its first head's (${firstPrev})`);

    chain.heads.forEach((entry, k) => {
      const i = at.first_index + k;
      const bad = (message: string) => problems.push({ where: 'head', file, head_index: i, message: `head #${i} (tree_size ${entry.head.tree_size}) in ${file}: ${message}` });
      if (i < table.end) {
        // Already read from an earlier file: a copy left by a crash while archiving; it must be the same head.
        if (table.present(i) && table.hash(i) !== headHash(entry.head)) bad(`differs from head #${i} in ${table.file(i)}`);
        return;
      }
      if (i > table.end) {
        problems.push({
          where: 'head',
          file,
          head_index: table.end,
          message: `heads #${table.end}..#${i - 1} are missing before ${file}: an archive segment ${archiveGlob(chainFile)} was deleted or moved`,
        });
        while (table.end < i) table.push(undefined);
        prev = 'gap';
      }
      const sigProblem = opts.signatures === 'last' ? undefined : headSignatureProblem(entry, backend);
      if (sigProblem) bad(sigProblem);
      lastFile = file;
      if (pinned !== undefined && !pinned.includes(entry.public_key)) bad(`signed by ${entry.public_key}, not the pinned key ${opts.pubkey}`);
      table.push(entry, sigProblem === undefined, file);
      heads++;
      const before = prev;
      prev = entry;
      if (before === 'gap') return; // its link cannot be checked here
      const expectedPrev = before ? headHash(before.head) : null;
      if (entry.head.previous_head_hash !== expectedPrev) bad(`previous_head_hash is ${entry.head.previous_head_hash}, expected ${expectedPrev} (the chain was edited)`);
      if (!before) {
        if (entry.consistency_proof.length !== 0) bad('the first head must have an empty consistency_proof');
        return;
      }
      if (entry.head.tree_size <= before.head.tree_size) {
        bad(`tree_size does not grow (previous head has ${before.head.tree_size})`);
        return;
      }
      const proof = hashesFromHex(entry.consistency_proof)!;
      const ok = verifyConsistency(before.head.tree_size, entry.head.tree_size, fromHex(before.head.root_hash)!, fromHex(entry.head.root_hash)!, proof);
      if (!ok) bad(`consistency proof from head #${i - 1} does not verify: this tree does not extend the previous one`);
    });
  }
  const last = prev && prev !== 'gap' ? prev : undefined;
  if (opts.signatures === 'last' && last) {
    const i = table.end - 1;
    const problem = headSignatureProblem(last, backend);
    if (problem) problems.push({ where: 'head', file: lastFile, head_index: i, message: `head #${i} (tree_size ${last.head.tree_size}) in ${lastFile}: ${problem}` });
  }
  return { table, heads, problems, ...(last ? { last } : {}) };
}

function archiveGlob(chainFile: string): string {
  return `${chainFile.replace(/\.json$/, '')}-<first>-<last>.json`;
}
