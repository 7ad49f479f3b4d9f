import { appendFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { manualTimers } from '../../test/helpers.js';
import { canonicalJson } from '../../protocol/canonical-json.js';
import { keyPairFromSeed } from '../../protocol/keys.js';
import { EMPTY_ROOT, leafHash, merkleRoot, verifyConsistency, verifyInclusion } from '../../protocol/merkle.js';
import { createLedger, createLedgerObserver, createNamedLedger, type Ledger } from './ledger.js';
import { createJsonlReader } from '../store/jsonl-store.js';
import {
  LEDGER_FILES,
  archiveFileName,
  envelopeIdOf,
  formatProofChain,
  formatRootFile,
  hashesFromHex,
  headHash,
  headSignatureProblem,
  parseProofChain,
  parseRootFile,
  signTreeHead,
  type ChainEntry,
} from '../../protocol/ledger-files.js';
import { listArchiveSegments } from '../../lib/ledger-files.js';

const key = keyPairFromSeed(new Uint8Array(32).fill(7));
const clock = () => {
  let t = Date.parse('2025-01-01T00:00:00Z');
  return () => new Date((t += 1000));
};

function scanLine(i: number, extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(
    canonicalJson({
      v: 1,
      id: `scan-${i}`,
      seq: i + 1,
      ts: new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString(),
      kind: 'scan',
      node_id: `node-${i % 3}`,
      author: `node:node-${i % 3}`,
      body: { summary: { critical: i % 2 }, findings: [{ check: 'ssh', id: `inner-${i}`, title: 'PermitRootLogin yes' }], ...extra },
    }),
  );
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vm-ledger-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const journal = () => join(dir, 'sovereign-scans.jsonl');
const open = (extra: Partial<Parameters<typeof createLedger>[0]> = {}): Ledger =>
  createNamedLedger('scans', { dir, store: createJsonlReader({ dir }), key, now: clock(), minHeadIntervalMs: 10, ...extra });

/** Plays the journal: makes lines durable in the file, then hands them to the ledger. */
function write(ledger: Ledger, from: number, to: number): Buffer[] {
  const lines = Array.from({ length: to - from }, (_, k) => scanLine(from + k));
  appendFileSync(journal(), lines.map((l) => l.toString() + '\n').join(''));
  ledger.append(lines);
  return lines;
}

describe('formats', () => {
  it('ROOT.txt is two fixed lines and round-trips', () => {
    const root = { tree_size: 3, root_hash: 'ab'.repeat(32) };
    expect(formatRootFile(root)).toBe(`tree_size 3\nroot_hash ${'ab'.repeat(32)}\n`);
    expect(parseRootFile(formatRootFile(root))).toEqual(root);
    for (const bad of ['tree_size 3\n', `tree_size 03\nroot_hash ${'ab'.repeat(32)}\n`, `tree_size 3\nroot_hash ${'AB'.repeat(32)}\n`]) {
      expect(parseRootFile(bad)).toBeUndefined();
    }
  });

  it('finds the top-level envelope id, not one nested in the body', () => {
    expect(envelopeIdOf(scanLine(5))).toBe('scan-5');
    expect(envelopeIdOf(scanLine(5, { id: 'zzz', x: { id: 'yyy' } }))).toBe('scan-5');
    expect(envelopeIdOf(Buffer.from('{"id":"only-key"}'))).toBe('only-key');
    expect(envelopeIdOf(Buffer.from('not json'))).toBeUndefined();
  });

  it('rejects a malformed chain file with LEDGER_CORRUPT', () => {
    expect(() => parseProofChain('{')).toThrow(expect.objectContaining({ code: 'LEDGER_CORRUPT' }));
    expect(() => parseProofChain('{"format":"vaultmesh-proofchain/1","log":"x","heads":[{"head":{}}]}')).toThrow(/heads\.0/);
  });
});

describe('ledger', () => {
  it('starts empty and writes nothing until there is a leaf', async () => {
    const ledger = open();
    await ledger.load();
    expect(ledger.root()).toEqual({ tree_size: 0, root_hash: EMPTY_ROOT.toString('hex') });
    expect(await ledger.publishHead()).toBeUndefined();
    expect(ledger.latestHead()).toBeUndefined();
    await ledger.close();
  });

  it('appends, chains signed heads with consistency proofs, and rewrites ROOT.txt', async () => {
    const ledger = open();
    await ledger.load();
    const lines = write(ledger, 0, 5);
    expect(ledger.root()).toEqual({ tree_size: 5, root_hash: merkleRoot(lines.map(leafHash)).toString('hex') });
    const h1 = (await ledger.publishHead())!;
    expect(h1).toMatchObject({ tree_size: 5, previous_head_hash: null, key_id: key.keyId, root_hash: ledger.root().root_hash });
    expect(await ledger.publishHead()).toBeUndefined(); // no growth, no head

    lines.push(...write(ledger, 5, 12));
    const [h2, none] = await Promise.all([ledger.publishHead(), ledger.publishHead()]); // serialised
    expect(none).toBeUndefined();
    expect(h2!.previous_head_hash).toBe(headHash(h1));
    expect(h2!.timestamp > h1.timestamp).toBe(true);

    const chain = parseProofChain(readFileSync(join(dir, 'PROOFCHAIN.json'), 'utf8'));
    expect(chain.log).toBe('sovereign-scans.jsonl');
    expect(chain.heads.map((e) => e.head)).toEqual([h1, h2]);
    for (const e of chain.heads) expect(headSignatureProblem(e)).toBeUndefined();
    expect(chain.heads[0]!.consistency_proof).toEqual([]);
    expect(verifyConsistency(5, 12, Buffer.from(h1.root_hash, 'hex'), Buffer.from(h2!.root_hash, 'hex'), hashesFromHex(chain.heads[1]!.consistency_proof)!)).toBe(true);
    expect(readFileSync(join(dir, 'ROOT.txt'), 'utf8')).toBe(formatRootFile(h2!));
    // The cache holds exactly the leaf hashes.
    expect(readFileSync(join(dir, 'sovereign-scans.leaves'))).toEqual(Buffer.concat(lines.map(leafHash)));
    await ledger.close();
  });

  it('a restarted ledger has the same root, ids and proofs; proofs verify against the signed head', async () => {
    const a = open();
    await a.load();
    write(a, 0, 37);
    await a.publishHead();
    await a.close();

    for (const cache of ['kept', 'deleted', 'garbage']) {
      if (cache === 'deleted') rmSync(join(dir, 'sovereign-scans.leaves'));
      if (cache === 'garbage') writeFileSync(join(dir, 'sovereign-scans.leaves'), Buffer.alloc(100, 9));
      const b = open();
      await b.load();
      expect(b.root()).toEqual(a.root());
      expect(b.latestHead()).toEqual(a.latestHead());
      const index = b.indexOf('scan-21')!;
      expect(index).toBe(21);
      const proof = b.inclusionProofFor(index);
      expect(proof).toMatchObject({ leaf_index: 21, tree_size: 37, public_key: key.publicKeyHex });
      const line = await b.leafLine(index);
      expect(line).toEqual(scanLine(21));
      expect(verifyInclusion(leafHash(line), 21, 37, hashesFromHex(proof.audit_path)!, Buffer.from(proof.head.root_hash, 'hex'))).toBe(true);
      expect(readFileSync(join(dir, 'sovereign-scans.leaves')).length).toBe(37 * 32);
      await b.close();
    }
  });

  it('covers lines written while it was down with the next head', async () => {
    const a = open();
    await a.load();
    write(a, 0, 4);
    await a.publishHead();
    await a.close();
    appendFileSync(journal(), [4, 5].map((i) => scanLine(i).toString() + '\n').join(''));
    const b = open();
    await b.load();
    expect(b.size).toBe(6);
    expect(() => b.inclusionProofFor(5)).toThrow(expect.objectContaining({ code: 'NOT_YET_SIGNED' }));
    expect(() => b.inclusionProofFor(6)).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    const head = (await b.publishHead())!;
    expect(head.tree_size).toBe(6);
    expect(b.inclusionProofFor(5).tree_size).toBe(6);
    await b.close();
  });

  it('refuses a log shorter than the last head (LEDGER_MISMATCH)', async () => {
    const a = open();
    await a.load();
    const lines = write(a, 0, 10);
    await a.publishHead();
    await a.close();
    const keep = lines.slice(0, 9).reduce((n, l) => n + l.length + 1, 0);
    truncateSync(journal(), keep);
    await expect(open().load()).rejects.toMatchObject({ code: 'LEDGER_MISMATCH', message: expect.stringMatching(/has 9 lines but head #0 .* signs 10/) });
  });

  it('refuses a changed line and names it', async () => {
    const a = open();
    await a.load();
    write(a, 0, 10);
    await a.publishHead();
    await a.close();
    const text = readFileSync(journal(), 'utf8').replace('"scan-6"', '"scan-X"');
    writeFileSync(journal(), text);
    await expect(open().load()).rejects.toMatchObject({ code: 'LEDGER_MISMATCH', message: expect.stringContaining('sovereign-scans.jsonl:7') });
  });

  it('refuses a head with a bad signature', async () => {
    const a = open();
    await a.load();
    write(a, 0, 3);
    await a.publishHead();
    await a.close();
    const file = join(dir, 'PROOFCHAIN.json');
    writeFileSync(file, readFileSync(file, 'utf8').replace('"timestamp":"2025', '"timestamp":"2026'));
    await expect(open().load()).rejects.toMatchObject({ code: 'LEDGER_MISMATCH', message: expect.stringContaining('signature') });
  });

  it('checks every head of the chain file at load, not only the last: an edited older head is refused', async () => {
    const a = open();
    await a.load();
    for (const upto of [2, 4, 6]) {
      write(a, upto - 2, upto);
      await a.publishHead();
    }
    await a.close();
    const file = join(dir, 'PROOFCHAIN.json');
    const text = readFileSync(file, 'utf8');
    const lines = text.split('\n');
    // Head #0 re-signed by someone else: a valid signature on its own, but the chain no longer links to it.
    const entry = JSON.parse(lines[1]!.replace(/,$/, '')) as ChainEntry;
    const forger = keyPairFromSeed(new Uint8Array(32).fill(9));
    const forged = { head: signTreeHead({ ...entry.head, key_id: forger.keyId, timestamp: '2025-01-01T00:00:00.500Z' }, forger), public_key: forger.publicKeyHex, consistency_proof: [] };
    lines[1] = canonicalJson(forged) + ',';
    writeFileSync(file, lines.join('\n'));
    await expect(open().load()).rejects.toMatchObject({ code: 'LEDGER_MISMATCH', message: expect.stringContaining('head #1 (tree_size 4) in PROOFCHAIN.json: previous_head_hash') });
  });

  it('leafLine notices a line changed on disk after append', async () => {
    const a = open();
    await a.load();
    write(a, 0, 3);
    writeFileSync(journal(), readFileSync(journal(), 'utf8').replace('"scan-1"', '"scan-Y"'));
    await expect(a.leafLine(1)).rejects.toMatchObject({ code: 'LEDGER_MISMATCH' });
    await a.close();
  });

  it('scheduleHead publishes once per interval on the injected timers; flush publishes the rest', async () => {
    const errors: unknown[] = [];
    const manual = manualTimers(1_700_000_000_000);
    const a = open({ minHeadIntervalMs: 60_000, onError: (e) => errors.push(e), timers: manual.timers, clockMs: () => manual.nowMs });
    // Heads are written on the thread pool (fsyncs): wait in real time, bounded.
    const settled = async (size: number, ms = 5000) => {
      const until = Date.now() + ms;
      while (a.latestHead()?.tree_size !== size && Date.now() < until) await new Promise((r) => setTimeout(r, 2));
      return a.latestHead()?.tree_size;
    };
    await a.load();
    write(a, 0, 2);
    a.scheduleHead(); // nothing published yet: due at once
    a.scheduleHead(); // one timer, not two
    expect(manual.pending).toBe(1);
    manual.advance(0);
    expect(await settled(2)).toBe(2);
    write(a, 2, 3);
    a.scheduleHead(); // inside the interval: waits for the rest of it
    manual.advance(59_999);
    expect(await settled(3, 300)).toBe(2);
    manual.advance(1);
    expect(await settled(3)).toBe(3);
    write(a, 3, 4);
    a.scheduleHead();
    await a.flush(); // cancels the timer and publishes now
    expect(manual.pending).toBe(0);
    expect(a.latestHead()?.tree_size).toBe(4);
    await a.close();
    expect(errors).toEqual([]);
  });

  it('routes committed lines to the ledger of their journal', async () => {
    const scans = open();
    const commands = createNamedLedger('commands', { dir, store: createJsonlReader({ dir }), key, now: clock() });
    await scans.load();
    await commands.load();
    const observe = createLedgerObserver({ scans, commands });
    const cmd = Buffer.from('{"author":"op","body":{},"id":"cmd-1","kind":"command","seq":2,"ts":"2025-01-01T00:00:00Z","v":1}');
    appendFileSync(journal(), scanLine(0).toString() + '\n');
    appendFileSync(join(dir, LEDGER_FILES.commands.journalFile), cmd.toString() + '\n');
    observe([
      { journal: 'scans', line: scanLine(0), envelope: JSON.parse(scanLine(0).toString()) },
      { journal: 'commands', line: cmd, envelope: JSON.parse(cmd.toString()) },
      { journal: 'events', line: Buffer.from('{}'), envelope: JSON.parse(cmd.toString()) },
    ]);
    expect([scans.size, commands.size]).toEqual([1, 1]);
    expect(commands.indexOf('cmd-1')).toBe(0);
    await scans.close();
    await commands.close();
    expect(readFileSync(join(dir, 'COMMANDS_ROOT.txt'), 'utf8')).toBe(formatRootFile({ tree_size: 1, root_hash: leafHash(cmd).toString('hex') }));
    expect(parseProofChain(readFileSync(join(dir, 'COMMANDS_PROOFCHAIN.json'), 'utf8')).log).toBe('commands.jsonl');
  });

  it('writes a head off the event loop: other tasks run meanwhile, and the head is served only once its files are written', async () => {
    const ledger = open();
    await ledger.load();
    write(ledger, 0, 4);
    let turns = 0;
    let sawHeadBeforeFiles = false;
    let stop = false;
    const spin = () => {
      if (stop) return;
      turns++;
      // Whatever a request sees while the head is being written: no head yet, or one whose files are complete.
      const h = ledger.latestHead();
      if (h && (!existsSync(join(dir, 'ROOT.txt')) || readFileSync(join(dir, 'ROOT.txt'), 'utf8') !== formatRootFile(h))) {
        const chain = parseProofChain(readFileSync(join(dir, 'PROOFCHAIN.json'), 'utf8'));
        if (chain.heads.at(-1)?.head.tree_size !== h.tree_size) sawHeadBeforeFiles = true;
      }
      setImmediate(spin);
    };
    setImmediate(spin);
    const h = (await ledger.publishHead())!;
    stop = true;
    // Four fsyncs (chain, its dir, root, its dir) on the thread pool: the loop had turns in between. With the
    // synchronous writes it had none (the whole head was one turn).
    expect(turns).toBeGreaterThan(2);
    expect(sawHeadBeforeFiles).toBe(false);
    expect(parseProofChain(readFileSync(join(dir, 'PROOFCHAIN.json'), 'utf8')).heads.at(-1)!.head).toEqual(h);
    expect(readFileSync(join(dir, 'ROOT.txt'), 'utf8')).toBe(formatRootFile(h));
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    await ledger.close();
  });

  it('awaits onHead before the next head, so what it writes follows the heads in order', async () => {
    const seen: number[] = [];
    let release: (() => void) | undefined;
    const ledger = open({
      onHead: (head) =>
        new Promise<void>((resolve) => {
          seen.push(head.tree_size);
          release = resolve;
        }),
    });
    await ledger.load();
    write(ledger, 0, 2);
    const first = ledger.publishHead();
    await new Promise((r) => setTimeout(r, 50));
    write(ledger, 2, 3);
    const second = ledger.publishHead();
    await new Promise((r) => setTimeout(r, 50));
    expect(seen).toEqual([2]); // the second head waits for the first one's onHead
    release!();
    await first;
    await new Promise((r) => setTimeout(r, 50));
    expect(seen).toEqual([2, 3]);
    release!();
    expect((await second)!.tree_size).toBe(3);
    await ledger.close();
  });

  it('refuses to write a head when the chain file cannot be written, and keeps its state', async () => {
    const a = open();
    await a.load();
    write(a, 0, 2);
    rmSync(dir, { recursive: true, force: true });
    writeFileSync(dir, 'not a directory'); // the log dir is now a file: every write fails
    await expect(a.publishHead()).rejects.toThrow();
    expect(a.latestHead()).toBeUndefined();
    rmSync(dir);
  });
});

describe('bounded chain file (archive segments)', () => {
  const chainText = (file = 'PROOFCHAIN.json') => readFileSync(join(dir, file), 'utf8');
  /** Every head in chain order, read from the archive segments then the chain file, de-duplicated by index. */
  const allHeads = (): ChainEntry[] => {
    const out: ChainEntry[] = [];
    for (const f of [...listArchiveSegments(dir, 'PROOFCHAIN.json').map((a) => a.file), 'PROOFCHAIN.json']) {
      const c = parseProofChain(chainText(f));
      c.heads.forEach((e, k) => {
        if ((c.first_index ?? 0) + k === out.length) out.push(e);
      });
    }
    return out;
  };
  const publishEach = async (ledger: Ledger, from: number, to: number) => {
    for (let i = from; i < to; i++) {
      write(ledger, i, i + 1);
      await ledger.publishHead();
    }
  };

  it('moves full chains into immutable segments before rewriting the chain file, and links across them', async () => {
    const a = open({ maxChainHeads: 3 });
    await a.load();
    await publishEach(a, 0, 8);
    expect(listArchiveSegments(dir, 'PROOFCHAIN.json')).toEqual([
      { file: 'PROOFCHAIN-0-2.json', first: 0, last: 2 },
      { file: 'PROOFCHAIN-3-5.json', first: 3, last: 5 },
    ]);
    expect(statSync(join(dir, 'PROOFCHAIN-0-2.json')).mode & 0o777).toBe(0o440);
    const current = parseProofChain(chainText());
    expect(current.first_index).toBe(6);
    expect(current.heads.map((e) => e.head.tree_size)).toEqual([7, 8]);
    const heads = allHeads();
    expect(heads.map((e) => e.head.tree_size)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(current.previous_head_hash).toBe(headHash(heads[5]!.head));
    heads.forEach((e, i) => {
      expect(headSignatureProblem(e)).toBeUndefined();
      expect(e.head.previous_head_hash).toBe(i === 0 ? null : headHash(heads[i - 1]!.head));
    });
    expect(parseProofChain(chainText('PROOFCHAIN-3-5.json'))).toMatchObject({ first_index: 3, previous_head_hash: headHash(heads[2]!.head) });
    expect(readFileSync(join(dir, 'ROOT.txt'), 'utf8')).toBe(formatRootFile(heads[7]!.head));
    await a.close();

    // A restart reads only the chain file (the segments may even be elsewhere) and continues the chain.
    const b = open({ maxChainHeads: 3 });
    await b.load();
    expect(b.latestHead()).toEqual(heads[7]!.head);
    await publishEach(b, 8, 10);
    expect(listArchiveSegments(dir, 'PROOFCHAIN.json').map((x) => x.file)).toEqual(['PROOFCHAIN-0-2.json', 'PROOFCHAIN-3-5.json', 'PROOFCHAIN-6-8.json']);
    expect(allHeads().map((e) => e.head.tree_size)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(allHeads()[9]!.head.previous_head_hash).toBe(headHash(allHeads()[8]!.head));
    await b.close();
  });

  it('the chain file stays bounded: its size does not grow with the number of heads', async () => {
    const a = open({ maxChainHeads: 10 });
    await a.load();
    const sizes: number[] = [];
    for (let i = 0; i < 60; i++) {
      await publishEach(a, i, i + 1);
      sizes.push(statSync(join(dir, 'PROOFCHAIN.json')).size);
    }
    expect(parseProofChain(chainText()).heads.length).toBeLessThanOrEqual(10);
    expect(Math.max(...sizes.slice(30))).toBeLessThanOrEqual(Math.max(...sizes.slice(0, 30)) * 1.5);
    await a.close();
  });

  it('a crash between writing the segment and rewriting the chain file loses nothing and is retried cleanly', async () => {
    const a = open({ maxChainHeads: 3 });
    await a.load();
    await publishEach(a, 0, 3); // the chain file is full: heads 0..2
    await a.close();
    // The crash: the segment was written (same bytes the ledger writes), the chain file was not rewritten yet.
    const c = parseProofChain(chainText());
    const segment = formatProofChain('sovereign-scans.jsonl', c.heads.map((e) => canonicalJson(e)), { first_index: 0, previous_head_hash: null });
    writeFileSync(join(dir, archiveFileName('PROOFCHAIN.json', 0, 2)), segment);
    const b = open({ maxChainHeads: 3 });
    await b.load();
    await publishEach(b, 3, 4); // rotates again: the existing identical segment is kept
    expect(readFileSync(join(dir, 'PROOFCHAIN-0-2.json'), 'utf8')).toBe(segment);
    expect(parseProofChain(chainText())).toMatchObject({ first_index: 3 });
    expect(allHeads().map((e) => e.head.tree_size)).toEqual([1, 2, 3, 4]);
    await b.close();
  });

  it('refuses to overwrite a segment holding other heads, and to start without the chain file when segments exist', async () => {
    const a = open({ maxChainHeads: 2 });
    await a.load();
    await publishEach(a, 0, 2);
    const segment = join(dir, 'PROOFCHAIN-0-1.json');
    writeFileSync(segment, 'something else'); // the chain file is full (2 heads): the next head archives them here
    write(a, 2, 3);
    await expect(a.publishHead()).rejects.toMatchObject({ code: 'LEDGER_MISMATCH', message: expect.stringContaining('PROOFCHAIN-0-1.json already exists') });
    expect(a.latestHead()?.tree_size).toBe(2);
    rmSync(segment);
    expect((await a.publishHead())?.tree_size).toBe(3);
    await a.close();
    rmSync(join(dir, 'PROOFCHAIN.json'));
    await expect(open({ maxChainHeads: 2 }).load()).rejects.toMatchObject({ code: 'LEDGER_MISMATCH', message: expect.stringContaining('PROOFCHAIN.json is missing but its archive segments') });
  });

  it('reads a chain file written before segments existed (no first_index)', async () => {
    const a = open();
    await a.load();
    await publishEach(a, 0, 2);
    await a.close();
    const legacy = chainText().replace(',"first_index":0,"previous_head_hash":null', '');
    expect(legacy).not.toContain('first_index');
    writeFileSync(join(dir, 'PROOFCHAIN.json'), legacy);
    const b = open();
    await b.load();
    expect(b.latestHead()?.tree_size).toBe(2);
    await publishEach(b, 2, 3);
    expect(parseProofChain(chainText()).heads).toHaveLength(3);
    await b.close();
    expect(existsSync(join(dir, 'PROOFCHAIN-0-1.json'))).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});

describe('trusted keys', () => {
  const keyB = keyPairFromSeed(new Uint8Array(32).fill(8));

  it('load refuses a chain whose last head another key signed, naming its key_id', async () => {
    const a = open();
    await a.load();
    write(a, 0, 3);
    await a.publishHead();
    await a.close();
    await expect(open({ key: keyB }).load()).rejects.toMatchObject({
      code: 'LEDGER_MISMATCH',
      message: expect.stringMatching(new RegExp(`head #0 in PROOFCHAIN.json is signed by key_id ${key.keyId}, which is neither this center's key \\(${keyB.keyId}\\)`)),
    });
  });

  it('accepts the previous key after a rotation; the next head is signed by the new key', async () => {
    const a = open();
    await a.load();
    write(a, 0, 3);
    await a.publishHead();
    await a.close();
    const b = open({ key: keyB, trustedKeys: [key.publicKeyHex.toUpperCase()] });
    await b.load();
    write(b, 3, 5);
    const head = (await b.publishHead())!;
    expect(head.key_id).toBe(keyB.keyId);
    await b.close();
    // Once a head is signed by the new key, the old one can be dropped; the old key alone no longer loads it.
    const c = open({ key: keyB });
    await c.load();
    await c.close();
    await expect(open().load()).rejects.toMatchObject({ code: 'LEDGER_MISMATCH', message: expect.stringContaining(keyB.keyId) });
  });
});

describe('ledger load from a state snapshot', () => {
  async function snapshotAt(n: number) {
    const ledger = open();
    await ledger.load();
    write(ledger, 0, n);
    await ledger.publishHead();
    const state = ledger.exportState();
    await ledger.close();
    return state;
  }

  it('takes the tree as saved when the leaf cache holds exactly its leaves, and answers like a full load', async () => {
    const state = await snapshotAt(40);
    expect(state.tree?.size).toBe(40);
    expect(state.leavesSha256).toMatch(/^[0-9a-f]{64}$/);
    const fresh = open();
    await fresh.load();
    const full = [fresh.root(), fresh.consistencyProof(3, 40), Buffer.from(fresh.hashRange(16, 32))];
    await fresh.close();
    const fromSnap = open();
    expect(await fromSnap.load({ ...state, afterSeq: 40 })).toBe('snapshot');
    expect([fromSnap.root(), fromSnap.consistencyProof(3, 40), Buffer.from(fromSnap.hashRange(16, 32))]).toEqual(full);
    write(fromSnap, 40, 45); // and goes on from it
    expect(fromSnap.root().tree_size).toBe(45);
    await fromSnap.close();
  });

  it('hashes the cached leaves up again when the saved tree is absent or its leaves digest differs, and reads the journal when they do not give the root', async () => {
    const state = await snapshotAt(40);
    const { tree: _t, leavesSha256: _d, ...withoutTree } = state;
    for (const from of [withoutTree, { ...state, leavesSha256: 'ab'.repeat(32) }]) {
      const l = open();
      expect(await l.load({ ...from, afterSeq: 40 })).toBe('snapshot');
      expect(l.root().tree_size).toBe(40);
      await l.close();
    }
    // A leaf cache changed after the snapshot: neither its digest nor its root fits; the journal is the truth.
    const cacheFile = join(dir, 'sovereign-scans.leaves');
    const cache = readFileSync(cacheFile);
    cache[5 * 32] ^= 1;
    writeFileSync(cacheFile, cache);
    const l = open();
    expect(await l.load({ ...state, afterSeq: 40 })).toBe('journal');
    expect(l.root()).toEqual({ tree_size: 40, root_hash: state.root });
    await l.close();
  });
});
