import { execFile } from 'node:child_process';
import { appendFileSync, chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamedLedger } from '../command-center/ledger/ledger.js';
import { createJsonlReader } from '../command-center/store/jsonl-store.js';
import { formatProofChain, parseProofChain, type LedgerName } from '../protocol/ledger-files.js';
import { canonicalJson } from '../protocol/canonical-json.js';
import { keyPairFromSeed, type KeyPair } from '../protocol/keys.js';
import { runLedger } from './commands/ledger.js';
import { ledgerCheck, ledgerProve, ledgerRoot, ledgerVerify, type ProofBundle } from './ledger.js';
import { requirePart } from '../test/required-part.js';

const keyA = keyPairFromSeed(new Uint8Array(32).fill(1));
const keyB = keyPairFromSeed(new Uint8Array(32).fill(2));
const LINES = 20;
const JOURNAL = 'sovereign-scans.jsonl';

function line(i: number, salt = ''): string {
  return canonicalJson({
    v: 1,
    id: `scan-${i}`,
    seq: 10 * (i + 1),
    ts: new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString(),
    kind: 'scan',
    node_id: `node-${i % 4}`,
    author: `node:node-${i % 4}`,
    body: { findings: [{ check: 'disk', severity: 'low', title: `disk ${i}${salt}` }], summary: { low: 1 } },
  });
}

/** A log dir written by the real ledger: heads after 8, 14 and 20 lines. */
async function makeLogDir(key: KeyPair, salt = '', name: LedgerName = 'scans'): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'vm-cli-ledger-'));
  let t = Date.parse('2025-01-01T00:00:00Z');
  const ledger = createNamedLedger(name, { dir, store: createJsonlReader({ dir }), key, now: () => new Date((t += 60_000)) });
  await ledger.load();
  const journal = join(dir, name === 'scans' ? JOURNAL : 'commands.jsonl');
  let i = 0;
  for (const upto of [8, 14, LINES]) {
    const batch: Buffer[] = [];
    for (; i < upto; i++) batch.push(Buffer.from(line(i, salt)));
    appendFileSync(journal, batch.map((b) => `${b}\n`).join(''));
    ledger.append(batch);
    await ledger.publishHead();
  }
  await ledger.close();
  return dir;
}

let clean: string;
let other: string;
const scratch: string[] = [];
beforeAll(async () => {
  clean = await makeLogDir(keyA);
  other = await makeLogDir(keyB, ' other');
});
afterAll(() => {
  for (const d of [clean, other, ...scratch]) rmSync(d, { recursive: true, force: true });
});

/** A copy of the clean dir with `edit` applied to the journal lines (array of lines without newlines). */
function tampered(edit: (lines: string[]) => string[] | string, opts: { keepCache?: boolean } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'vm-cli-tamper-'));
  scratch.push(dir);
  cpSync(clean, dir, { recursive: true });
  if (opts.keepCache === false) rmSync(join(dir, 'sovereign-scans.leaves'));
  const lines = readFileSync(join(dir, JOURNAL), 'utf8').split('\n').slice(0, -1);
  const edited = edit(lines);
  writeFileSync(join(dir, JOURNAL), typeof edited === 'string' ? edited : edited.map((l) => `${l}\n`).join(''));
  return dir;
}

function editFile(file: string, edit: (text: string) => string): string {
  const dir = mkdtempSync(join(tmpdir(), 'vm-cli-tamper-'));
  scratch.push(dir);
  cpSync(clean, dir, { recursive: true });
  writeFileSync(join(dir, file), edit(readFileSync(join(dir, file), 'utf8')));
  return dir;
}

describe('ledger verify', () => {
  it('passes on an untampered log and agrees with ledger root', async () => {
    const r = await ledgerVerify(clean, 'scans');
    expect(r.problems).toEqual([]);
    expect(r).toMatchObject({ ok: true, tree_size: LINES, heads: 3, signed_size: LINES });
    expect(await ledgerRoot(clean)).toEqual({ tree_size: LINES, root_hash: r.root_hash });
    expect((await ledgerVerify(clean, 'scans', { pubkey: keyA.publicKeyHex })).ok).toBe(true);
  });

  it.each(Array.from({ length: LINES }, (_, i) => i + 1))('one changed byte on line %i is named', async (n) => {
    const dir = tampered((lines) => {
      const l = Buffer.from(lines[n - 1]!);
      const at = Math.floor((l.length * ((n * 7) % 10)) / 10) + 1; // a different position on each line
      l[at] = l[at]! ^ 0x01;
      lines[n - 1] = l.toString('latin1');
      return lines;
    });
    const r = await ledgerVerify(dir, 'scans');
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatchObject({ where: 'line', line: n, file: JOURNAL });
    expect(r.problems[0]!.message).toContain(`${JOURNAL}:${n}`);
  });

  it('without the leaf cache, a changed line still fails and names the first head it breaks', async () => {
    const dir = tampered((lines) => ((lines[10] = lines[10]!.replace('disk 10', 'disk 1O')), lines), { keepCache: false });
    const r = await ledgerVerify(dir, 'scans');
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatchObject({ where: 'head', head_index: 1 });
  });

  it('names a deleted line', async () => {
    const r = await ledgerVerify(tampered((lines) => lines.filter((_, i) => i !== 5)), 'scans');
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatchObject({ where: 'line', line: 6 });
  });

  it('names two reordered lines', async () => {
    const r = await ledgerVerify(tampered((lines) => [...lines.slice(0, 11), lines[12]!, lines[11]!, ...lines.slice(13)]), 'scans');
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatchObject({ where: 'line', line: 12 });
    expect(r.problems.some((p) => p.line === 13 && /seq .* does not increase/.test(p.message))).toBe(true);
  });

  it('names truncation, at a line boundary or mid-line', async () => {
    for (const dir of [tampered((lines) => lines.slice(0, 15)), tampered((lines) => lines.slice(0, 15).map((l) => `${l}\n`).join('') + lines[15]!.slice(0, 30))]) {
      const r = await ledgerVerify(dir, 'scans');
      expect(r.ok).toBe(false);
      expect(r.problems[0]).toMatchObject({ where: 'line', line: 16 });
      expect(r.problems.some((p) => p.where === 'head' && p.head_index === 2 && /has 15/.test(p.message))).toBe(true);
    }
  });

  it('names an appended forged line (unless unsigned tails are allowed)', async () => {
    const dir = tampered((lines) => [...lines, line(99)]);
    const r = await ledgerVerify(dir, 'scans');
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatchObject({ where: 'line', line: LINES + 1 });
    const lenient = await ledgerVerify(dir, 'scans', { allowUnsignedTail: true });
    expect(lenient.ok).toBe(true);
    expect(lenient.warnings[0]).toContain('not covered by any signed head');
  });

  it('names an altered head or signature', async () => {
    const chainFile = 'PROOFCHAIN.json';
    const heads = readFileSync(join(clean, chainFile), 'utf8');
    const head1 = JSON.parse(heads.split('\n')[2]!.replace(/,$/, '')) as { head: { timestamp: string; signature: string; root_hash: string } };
    const cases: Array<[string, (t: string) => string]> = [
      ['timestamp', (t) => t.replace(head1.head.timestamp, '2030-01-01T00:00:00.000Z')],
      ['signature', (t) => t.replace(head1.head.signature, head1.head.signature.slice(0, -2) + (head1.head.signature.endsWith('00') ? '01' : '00'))],
      ['root', (t) => t.replace(head1.head.root_hash, '00'.repeat(32))],
    ];
    for (const [, edit] of cases) {
      const r = await ledgerVerify(editFile(chainFile, edit), 'scans');
      expect(r.ok).toBe(false);
      expect(r.problems[0]).toMatchObject({ where: 'head', head_index: 1 });
    }
    const wrongKey = await ledgerVerify(clean, 'scans', { pubkey: keyB.publicKeyHex });
    expect(wrongKey.problems[0]).toMatchObject({ where: 'head', head_index: 0, message: expect.stringContaining('pinned key') });
  });

  it('names a removed head (broken chain link) and a bad ROOT.txt', async () => {
    const noMiddle = await ledgerVerify(editFile('PROOFCHAIN.json', (t) => t.split('\n').filter((_, i) => i !== 2).join('\n')), 'scans');
    expect(noMiddle.problems[0]).toMatchObject({ where: 'head', head_index: 1, message: expect.stringContaining('previous_head_hash') });
    const root = await ledgerVerify(editFile('ROOT.txt', (t) => t.replace('tree_size 20', 'tree_size 14')), 'scans');
    expect(root.problems[0]).toMatchObject({ where: 'root_file' });
    const garbage = await ledgerVerify(editFile('PROOFCHAIN.json', () => '{"format":"nope"}'), 'scans');
    expect(garbage.problems[0]).toMatchObject({ where: 'line', line: 1 }); // nothing is signed any more
    expect(garbage.problems.some((p) => p.where === 'chain')).toBe(true);
  });

  it('verifies the commands ledger with its own files', async () => {
    const dir = await makeLogDir(keyA, '', 'commands');
    scratch.push(dir);
    expect(existsSync(join(dir, 'COMMANDS_ROOT.txt'))).toBe(true);
    expect((await ledgerVerify(dir, 'commands')).ok).toBe(true);
    expect((await ledgerVerify(dir, 'scans')).ok).toBe(true); // empty scans ledger: nothing to check
  });
});

describe('ledger verify across archive segments', () => {
  /** 7 heads after lines 3, 6, …, 21 with at most 2 heads per chain file: segments 0-1, 2-3, 4-5, chain file [6]. */
  async function makeSegmented(salt = ''): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), 'vm-cli-seg-'));
    scratch.push(dir);
    let t = Date.parse('2025-01-01T00:00:00Z');
    const ledger = createNamedLedger('scans', { dir, store: createJsonlReader({ dir }), key: keyA, now: () => new Date((t += 60_000)), maxChainHeads: 2 });
    await ledger.load();
    for (let i = 0; i < 21; i += 3) {
      const batch = [0, 1, 2].map((k) => Buffer.from(line(i + k, salt)));
      appendFileSync(join(dir, JOURNAL), batch.map((b) => `${b}\n`).join(''));
      ledger.append(batch);
      await ledger.publishHead();
    }
    await ledger.close();
    return dir;
  }
  let seg: string;
  let otherSeg: string;
  beforeAll(async () => {
    seg = await makeSegmented();
    otherSeg = await makeSegmented(' other');
  });
  const copy = (edit: (dir: string) => void): string => {
    const dir = mkdtempSync(join(tmpdir(), 'vm-cli-seg-tamper-'));
    scratch.push(dir);
    cpSync(seg, dir, { recursive: true });
    edit(dir);
    return dir;
  };
  const writable = (file: string) => (existsSync(file) && chmodSync(file, 0o644), file);

  it('checks every head, link and consistency proof across segments; prove uses the chain file', async () => {
    expect(['PROOFCHAIN-0-1.json', 'PROOFCHAIN-2-3.json', 'PROOFCHAIN-4-5.json'].every((f) => existsSync(join(seg, f)))).toBe(true);
    const r = await ledgerVerify(seg, 'scans');
    expect(r.problems).toEqual([]);
    expect(r).toMatchObject({ ok: true, tree_size: 21, heads: 7, segments: 3, signed_size: 21 });
    expect(ledgerCheck(await ledgerProve(seg, 'scan-4'), { pubkey: keyA.publicKeyHex }).ok).toBe(true);
    expect((await ledgerVerify(seg, 'scans', { pubkey: keyB.publicKeyHex })).problems.filter((p) => /pinned key/.test(p.message))).toHaveLength(7);
  });

  it('tolerates heads present in a segment and the chain file (crash while archiving), but not different ones', async () => {
    const crash = (mutate: (entries: string[]) => void) =>
      copy((dir) => {
        // The chain file as it was just before the last rotation: heads 4..6, while segment 4-5 was already written.
        const a45 = parseProofChain(readFileSync(join(dir, 'PROOFCHAIN-4-5.json'), 'utf8'));
        const entries = [...readFileSync(join(dir, 'PROOFCHAIN-4-5.json'), 'utf8').split('\n').slice(1, -2), readFileSync(join(dir, 'PROOFCHAIN.json'), 'utf8').split('\n')[1]!].map((l) => l.replace(/,$/, ''));
        mutate(entries);
        writeFileSync(join(dir, 'PROOFCHAIN.json'), formatProofChain(JOURNAL, entries, { first_index: 4, previous_head_hash: a45.previous_head_hash ?? null }));
      });
    const r = await ledgerVerify(crash(() => undefined), 'scans');
    expect(r.problems).toEqual([]);
    expect(r).toMatchObject({ ok: true, heads: 7, segments: 3 });
    const differs = await ledgerVerify(crash((e) => (e[0] = e[0]!.replace(/"timestamp":"[^"]+"/, '"timestamp":"2030-01-01T00:00:00.000Z"'))), 'scans');
    expect(differs.ok).toBe(false);
    expect(differs.problems[0]).toMatchObject({ where: 'head', head_index: 4, file: 'PROOFCHAIN.json', message: expect.stringContaining('differs from head #4 in PROOFCHAIN-4-5.json') });
  });

  it('names a deleted archive segment (first, middle or last) as missing heads', async () => {
    for (const [file, from, to] of [['PROOFCHAIN-0-1.json', 0, 1], ['PROOFCHAIN-2-3.json', 2, 3], ['PROOFCHAIN-4-5.json', 4, 5]] as const) {
      const r = await ledgerVerify(copy((dir) => rmSync(join(dir, file))), 'scans');
      expect(r.ok, file).toBe(false);
      expect(r.problems[0]).toMatchObject({ where: 'head', head_index: from, message: expect.stringContaining(`heads #${from}..#${to} are missing`) });
    }
    const noChain = await ledgerVerify(copy((dir) => rmSync(join(dir, 'PROOFCHAIN.json'))), 'scans');
    expect(noChain.problems.some((p) => p.where === 'chain' && /PROOFCHAIN.json is missing/.test(p.message))).toBe(true);
  });

  it('names an altered or renamed archive segment', async () => {
    const altered = await ledgerVerify(
      copy((dir) => {
        const f = writable(join(dir, 'PROOFCHAIN-2-3.json'));
        const text = readFileSync(f, 'utf8');
        const ts = /"timestamp":"([^"]+)"/.exec(text.split('\n')[2]!)![1]!;
        writeFileSync(f, text.replace(ts, '2030-01-01T00:00:00.000Z'));
      }),
      'scans',
    );
    expect(altered.ok).toBe(false);
    expect(altered.problems[0]).toMatchObject({ where: 'head', head_index: 3, file: 'PROOFCHAIN-2-3.json', message: expect.stringContaining('signature does not verify') });
    // The next head, in another file, no longer links to it either.
    expect(altered.problems.some((p) => p.head_index === 4 && /previous_head_hash/.test(p.message))).toBe(true);

    const renamed = await ledgerVerify(copy((dir) => renameSync(join(dir, 'PROOFCHAIN-2-3.json'), join(dir, 'PROOFCHAIN-2-4.json'))), 'scans');
    expect(renamed.problems.some((p) => p.where === 'chain' && p.file === 'PROOFCHAIN-2-4.json' && /not the #2..#4 its name says/.test(p.message))).toBe(true);
  });

  it('names a broken link across a segment boundary (a segment swapped for one signed by the same key)', async () => {
    const r = await ledgerVerify(
      copy((dir) => {
        const f = writable(join(dir, 'PROOFCHAIN-2-3.json'));
        writeFileSync(f, readFileSync(join(otherSeg, 'PROOFCHAIN-2-3.json')));
      }),
      'scans',
    );
    expect(r.ok).toBe(false);
    const links = r.problems.filter((p) => /previous_head_hash is/.test(p.message)).map((p) => p.head_index);
    expect(links).toEqual([2, 4]); // into the swapped segment and out of it
    expect(r.problems.find((p) => p.head_index === 2 && /previous_head_hash/.test(p.message))).toMatchObject({ file: 'PROOFCHAIN-2-3.json' });
    expect(r.problems.some((p) => p.head_index === 2 && /root_hash does not match/.test(p.message) && p.message.includes('in PROOFCHAIN-2-3.json'))).toBe(true);

    // The chain file's recorded link to the archive, edited alone, is caught too.
    const header = await ledgerVerify(
      copy((dir) => {
        const f = join(dir, 'PROOFCHAIN.json');
        writeFileSync(f, readFileSync(f, 'utf8').replace(/"previous_head_hash":"[0-9a-f]{64}","heads"/, `"previous_head_hash":"${'00'.repeat(32)}","heads"`));
      }),
      'scans',
    );
    expect(header.problems.some((p) => p.where === 'chain' && p.file === 'PROOFCHAIN.json' && /is not its first head's/.test(p.message))).toBe(true);
  });
});

describe('ledger prove / check', () => {
  let bundle: ProofBundle;
  beforeAll(async () => {
    bundle = await ledgerProve(clean, 'scan-13');
  });

  it('builds a self-contained bundle that checks with no other input', () => {
    expect(bundle).toMatchObject({ format: 'vaultmesh-proof-bundle/1', leaf_index: 13, tree_size: LINES, leaf_line: line(13), public_key: keyA.publicKeyHex });
    const r = ledgerCheck(JSON.parse(JSON.stringify(bundle)));
    expect(r).toMatchObject({ ok: true, leaf_index: 13, key_id: keyA.keyId, envelope: { id: 'scan-13', kind: 'scan' } });
    expect(ledgerCheck(bundle, { pubkey: keyA.publicKeyHex }).ok).toBe(true);
  });

  it('fails when tampered, or against another log\'s head', async () => {
    const otherBundle = await ledgerProve(other, 'scan-13');
    const bad: Array<Record<string, unknown>> = [
      { ...bundle, leaf_line: bundle.leaf_line.replace('disk 13', 'disk 31') },
      { ...bundle, leaf_index: 12 },
      { ...bundle, audit_path: [...bundle.audit_path].reverse() },
      { ...bundle, head: otherBundle.head, public_key: otherBundle.public_key },
      { ...bundle, head: { ...bundle.head, root_hash: otherBundle.head.root_hash } },
      { ...bundle, public_key: keyB.publicKeyHex },
      { ...bundle, tree_size: 19 },
      { ...bundle, format: 'other' },
      { ...bundle, audit_path: ['zz'] },
    ];
    for (const b of bad) expect(ledgerCheck(b).ok).toBe(false);
    expect(ledgerCheck(bundle, { pubkey: keyB.publicKeyHex }).ok).toBe(false);
    expect(ledgerCheck(null).ok).toBe(false);
  });

  it('refuses unknown ids and tampered logs', async () => {
    await expect(ledgerProve(clean, 'scan-404')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const dir = tampered((lines) => ((lines[2] = lines[2]!.replace('disk 2', 'disk Z')), lines));
    await expect(ledgerProve(dir, 'scan-13')).rejects.toMatchObject({ code: 'LEDGER_MISMATCH' });
  });
});

describe('vaultmesh ledger (cac layer, in process)', () => {
  const capture = () => {
    let text = '';
    const stream = new Writable({
      write(chunk, _enc, cb) {
        text += String(chunk);
        cb();
      },
    });
    return { stream, text: () => text };
  };
  const run = async (action: string | undefined, arg: string | undefined, flags: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) => {
    const out = capture();
    const err = capture();
    const code = await runLedger(action, arg, flags, { stdout: out.stream, stderr: err.stream, env, setExitCode: () => undefined });
    return { code, out: out.text(), err: err.text() };
  };

  it('root --json prints exactly {tree_size, root_hash}', async () => {
    const r = await run('root', undefined, { json: true }, { VAULTMESH_LOG_DIR: clean });
    expect(r.code).toBe(0);
    const parsed = JSON.parse(r.out) as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual(['tree_size', 'root_hash']);
    expect(parsed.tree_size).toBe(LINES);
    expect(r.out).toMatch(/^\{"tree_size":20,"root_hash":"[0-9a-f]{64}"\}\n$/);
  });

  it('verify exits 0 / 1 and prints one line', async () => {
    expect(await run('verify', undefined, { dir: clean })).toMatchObject({ code: 0, out: expect.stringMatching(/^ok: /) });
    const dir = tampered((lines) => lines.filter((_, i) => i !== 3));
    const bad = await run('verify', undefined, { dir });
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/^FAILED: sovereign-scans\.jsonl:4: /);
    expect(bad.out.trim().split('\n')).toHaveLength(1);
    const asJson = JSON.parse((await run('verify', undefined, { dir, json: true })).out) as { ok: boolean; problems: unknown[] };
    expect(asJson.ok).toBe(false);
  });

  it('prove --out then check', async () => {
    const out = join(clean, 'bundle.json');
    expect((await run('prove', 'scan-3', { dir: clean, out })).code).toBe(0);
    const ok = await run('check', out, {});
    expect(ok).toMatchObject({ code: 0, out: expect.stringContaining('scan scan-3 from node-3 is leaf 3') });
    writeFileSync(out, readFileSync(out, 'utf8').replace('disk 3', 'disk 4'));
    expect((await run('check', out, {})).code).toBe(1);
    rmSync(out);
  });

  it('usage errors exit 2 with one line', async () => {
    for (const [action, arg, flags] of [
      ['nope', undefined, { dir: clean }],
      [undefined, undefined, { dir: clean }],
      ['root', undefined, { dir: join(clean, 'missing') }],
      ['root', undefined, { dir: clean, log: 'heartbeats' }],
      ['verify', undefined, { dir: clean, pubkey: 'xyz' }],
      ['prove', undefined, { dir: clean }],
      ['root', undefined, { dir: true }],
    ] as const) {
      const r = await run(action, arg, flags as Record<string, unknown>);
      expect(r.code, `${action} ${JSON.stringify(flags)}`).toBe(2);
      expect(r.err.trim().split('\n')).toHaveLength(1);
    }
  });

  const bin = join(process.cwd(), 'dist/cli/main.js');
  const built = existsSync(bin) && existsSync(join(process.cwd(), 'dist/cli/commands/ledger.js')) && readFileSync(join(process.cwd(), 'dist/cli/command-table.js'), 'utf8').includes('./commands/ledger.js');
  const hasBin = requirePart({ name: `the built CLI (${bin})`, present: built, install: 'run npm run build first (npm ci builds it)', suite: 'vaultmesh ledger: the built binary' });
  it.skipIf(!hasBin)('the built binary verifies a log dir (node dist/cli/main.js ledger verify --json)', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [bin, 'ledger', 'verify', '--dir', clean, '--json']);
    expect(JSON.parse(stdout)).toMatchObject({ ok: true, tree_size: LINES });
  });
});
