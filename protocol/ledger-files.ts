/**
 * The ledger file formats (docs/LEDGER.md), pure: what the center writes beside its journals and what any verifier
 * reads. File names of the two ledgers, ROOT.txt, PROOFCHAIN.json and its archive segments
 * `PROOFCHAIN-<first>-<last>.json`, tree heads (signing, hashing, checking), the proof bundle of one journal line
 * (`buildProofBundle`, `checkProofBundle`), and the envelope id of a journal line. No IO: callers read and write the
 * files (lib/ledger-files.ts has the two reads both programs share).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from './canonical-json.js';
import { nodeCryptoBackend, type Ed25519Backend } from './ed25519.js';
import { VaultMeshError } from './errors.js';
import { fromHex, hex32Schema, hexKeySchema, keyIdSchema, signatureHexSchema, toHex } from './hex.js';
import { keyIdOf, type KeyPair } from './keys.js';
import { HASH_SIZE, leafHash, verifyInclusion } from './merkle.js';
import { signPayload, verifyPayload } from './signing.js';

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

const hash32 = hex32Schema;

/** The signed fields of a tree head. The signature is Ed25519 over the RFC 8785 bytes of exactly this object. */
export const treeHeadSchema = z.strictObject({
  tree_size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  root_hash: hash32,
  timestamp: z.iso.datetime({ offset: true }),
  previous_head_hash: hash32.nullable(),
  key_id: keyIdSchema,
});

export const signedTreeHeadSchema = treeHeadSchema.extend({
  signature: signatureHexSchema,
});

export type TreeHead = z.infer<typeof treeHeadSchema>;
export type SignedTreeHead = z.infer<typeof signedTreeHeadSchema>;

/** One element of PROOFCHAIN.json `heads`: the signed head, the key that signed it, and the proof linking it. */
export const chainEntrySchema = z.object({
  head: signedTreeHeadSchema,
  public_key: hexKeySchema,
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

/**
 * The archive segments of a chain file among the file names of its dir, in chain order (by first, then last index).
 * Pure: the caller lists the dir.
 */
export function archiveSegmentsOf(fileNames: readonly string[], chainFile: string): ArchiveSegment[] {
  const base = chainFile.replace(/\.json$/, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`^${base}-(0|[1-9][0-9]{0,15})-(0|[1-9][0-9]{0,15})\\.json$`);
  const out: ArchiveSegment[] = [];
  for (const file of fileNames) {
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

/** A self-contained inclusion proof: everything needed to check one journal line against a signed head. */
export const proofBundleSchema = z.object({
  format: z.literal(PROOF_BUNDLE_FORMAT),
  /** The journal the line comes from (informational). */
  log: z.string().optional(),
  /** The journal line without its newline; leaf bytes = its UTF-8 encoding. */
  leaf_line: z.string(),
  leaf_index: z.number().int().nonnegative(),
  tree_size: z.number().int().positive(),
  audit_path: z.array(hash32),
  head: signedTreeHeadSchema,
  public_key: hash32,
});

export type ProofBundle = z.infer<typeof proofBundleSchema>;

/**
 * The proof bundle of one journal line: the API (`GET /api/ledger/proof/:id`) and `vaultmesh ledger prove` both
 * build it here, so `vaultmesh ledger check` verifies what either hands out. `leafLine` must be valid UTF-8 (the
 * bundle carries it as a string).
 */
export function buildProofBundle(p: {
  log: string;
  leafLine: Buffer;
  leafIndex: number;
  auditPath: readonly Buffer[] | readonly string[];
  head: SignedTreeHead;
  publicKey: string;
}): ProofBundle {
  const leaf_line = p.leafLine.toString('utf8');
  if (!Buffer.from(leaf_line, 'utf8').equals(p.leafLine)) throw new VaultMeshError('LEDGER_CORRUPT', `${p.log}:${p.leafIndex + 1} is not valid UTF-8`);
  return {
    format: PROOF_BUNDLE_FORMAT,
    log: p.log,
    leaf_line,
    leaf_index: p.leafIndex,
    tree_size: p.head.tree_size,
    audit_path: p.auditPath.map((h) => (typeof h === 'string' ? h : toHex(h))),
    head: p.head,
    public_key: p.publicKey,
  };
}

export interface BundleCheck {
  ok: boolean;
  /** Why the bundle fails (empty when ok). */
  problems: string[];
  bundle?: ProofBundle;
}

/** Verifies a proof bundle with no other input (optionally pinning the center's public key). */
export function checkProofBundle(value: unknown, opts: { pubkey?: string; backend?: Ed25519Backend } = {}): BundleCheck {
  const parsed = proofBundleSchema.safeParse(value);
  if (!parsed.success) return { ok: false, problems: parsed.error.issues.slice(0, 5).map((i) => `bundle.${i.path.join('.')}: ${i.message}`) };
  const b = parsed.data;
  const problems: string[] = [];
  const sig = headSignatureProblem({ head: b.head, public_key: b.public_key, consistency_proof: [] }, opts.backend);
  if (sig) problems.push(`head: ${sig}`);
  if (opts.pubkey !== undefined && b.public_key !== opts.pubkey) problems.push(`signed by ${b.public_key}, not the pinned key ${opts.pubkey}`);
  if (b.tree_size !== b.head.tree_size) problems.push(`tree_size ${b.tree_size} is not the head's ${b.head.tree_size}`);
  const leaf = leafHash(Buffer.from(b.leaf_line, 'utf8'));
  if (!verifyInclusion(leaf, b.leaf_index, b.head.tree_size, hashesFromHex(b.audit_path)!, fromHex(b.head.root_hash)!)) {
    problems.push(`inclusion proof does not lead from leaf ${b.leaf_index} to the head's root_hash`);
  }
  return { ok: problems.length === 0, problems, bundle: b };
}

const SEQ_KEY = Buffer.from(',"seq":');

/** The `seq` of a canonical envelope line: the last `,"seq":` (only ts and v follow it), else JSON.parse. */
export function envelopeSeqOf(line: Buffer): number | undefined {
  const at = line.lastIndexOf(SEQ_KEY);
  if (at >= 0) {
    let n = 0;
    let i = at + SEQ_KEY.length;
    const start = i;
    for (; i < line.length && line[i]! >= 0x30 && line[i]! <= 0x39 && i - start < 16; i++) n = n * 10 + (line[i]! - 0x30);
    if (i > start && (line[i] === 0x2c || line[i] === 0x7d)) return n;
  }
  try {
    const seq = (JSON.parse(line.toString('utf8')) as { seq?: unknown } | null)?.seq;
    return Number.isSafeInteger(seq) ? (seq as number) : undefined;
  } catch {
    return undefined;
  }
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
