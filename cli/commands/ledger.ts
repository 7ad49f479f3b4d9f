/**
 * The cac layer for `vaultmesh ledger root|verify|prove|check|vkey|tiles|status`: maps flags to typed options, calls cli/ledger.ts,
 * renders text or `--json`, and turns failures into one line on stderr and an exit code (0 ok, 1 verification
 * failed or other failure, 2 usage). cac matches a command on one word, so `ledger <action>` is registered once
 * and dispatched here.
 */
import type { Writable } from 'node:stream';
import { VaultMeshError } from '../../protocol/errors.js';
import { renderCliError, renderJson, renderJsonLine } from '../output.js';
import { sanitize, terminalText } from '../terminal-text.js';
import { isHex } from '../../protocol/hex.js';
import { writeFileAtomicSync } from '../../lib/atomic-file.js';
import {
  ledgerCheck,
  ledgerProve,
  ledgerRoot,
  ledgerVerify,
  readBundleFile,
  type CheckResult,
  type LedgerWhich,
  type ProveTarget,
  type VerifyProgress,
  type VerifyResult,
} from '../ledger.js';
import { hasSignedHead, readLogCheckpoint, renderWitnessStatus, witnessesAnswer, writeLogTiles, type TilesResult } from '../ledger-c2sp.js';
import { createApiClient } from '../api-client.js';
import { assertLedgerOrigin, ledgerVerifierKey, logOrigin } from '../../protocol/ledger-checkpoints.js';
import { fromHex } from '../../protocol/hex.js';
import { readFileSync } from 'node:fs';
import { assertPrivateFile } from '../../lib/private-file.js';
import { exportLedgers } from '../ledger-export.js';

export interface LedgerDeps {
  stdout: Writable;
  stderr: Writable & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  setExitCode: (code: number) => void;
}

const defaultDeps = (): LedgerDeps => ({
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  setExitCode: (code) => {
    process.exitCode = code;
  },
});

export interface LedgerFlags {
  dir?: unknown;
  log?: unknown;
  json?: boolean;
  out?: unknown;
  pubkey?: unknown;
  seq?: unknown;
  allowUnsignedTail?: boolean;
  origin?: unknown;
  ccUrl?: unknown;
  stateDir?: unknown;
  token?: unknown;
  databaseUrl?: unknown;
  databaseUrlFile?: unknown;
}

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

const usage = (message: string) => new VaultMeshError('USAGE', message);

/** The last value of a flag given once or several times; `true` (flag without value) is a usage error. */
function stringFlag(name: string, value: unknown): string | undefined {
  const v = Array.isArray(value) ? value[value.length - 1] : value;
  if (v === undefined) return undefined;
  if (v === true || v === '' || v === false) throw usage(`--${name} needs a value`);
  return String(v);
}

const SEQ = /^[1-9][0-9]{0,15}$/;

/** `prove`'s envelope: an id, `seq:N`, or --seq N. */
export function proveTarget(arg: string | undefined, seqFlag: string | undefined): ProveTarget {
  if (seqFlag !== undefined) {
    if (arg !== undefined) throw usage('give an envelope id or --seq, not both');
    if (!SEQ.test(seqFlag)) throw usage(`--seq must be a positive whole number (the seq column of vaultmesh logs view), not "${seqFlag}"`);
    return { seq: Number(seqFlag) };
  }
  if (arg === undefined || arg === '') throw usage('usage: vaultmesh ledger prove <envelope-id | seq:N> [--seq N] [--out FILE]');
  const m = /^seq:(.*)$/.exec(String(arg));
  if (!m) return String(arg);
  if (!SEQ.test(m[1]!)) throw usage(`${arg}: seq:N needs a positive whole number (the seq column of vaultmesh logs view)`);
  return { seq: Number(m[1]) };
}

// ---- rendering (pure) ----

export function renderVerify(r: VerifyResult): string {
  const mb = r.bytes / 1e6;
  const rate = r.elapsed_ms > 0 ? ` ${(mb / (r.elapsed_ms / 1000)).toFixed(0)} MB/s` : '';
  const stats = `${r.tree_size} lines, ${r.heads} heads, ${mb.toFixed(1)} MB in ${(r.elapsed_ms / 1000).toFixed(2)} s${rate}`;
  if (r.ok) return `ok: ${r.log}: ${stats}; root ${r.root_hash} (signed up to ${r.signed_size})\n`;
  const first = r.problems[0]!;
  const more = r.problems.length > 1 ? ` (${r.problems.length - 1} more problem${r.problems.length > 2 ? 's' : ''}; --json lists them)` : '';
  return `FAILED: ${first.message}${more}\n`;
}

export function renderCheck(r: CheckResult): string {
  if (!r.ok) return `FAILED: ${r.problems[0]}${r.problems.length > 1 ? ` (+${r.problems.length - 1} more)` : ''}\n`;
  const env = r.envelope;
  const what = env && typeof env.id === 'string' ? `${String(env.kind)} ${env.id}${typeof env.node_id === 'string' ? ` from ${env.node_id}` : ''}` : `leaf ${r.leaf_index}`;
  return `ok: ${what} is leaf ${r.leaf_index} of the tree of ${r.tree_size} (root ${r.root_hash}) signed ${r.timestamp} by key ${r.key_id}\n${approvalsLine(r)}`;
}

/** A command that needed approval: the proven line names who proposed and who approved it (docs/LEDGER.md). */
function approvalsLine(r: CheckResult): string {
  if (!r.approval) return '';
  const seq = r.envelope?.seq;
  const list = r.approval.approvals.map((a) => `${String(a.by)} at ${String(a.at)} (seq ${String(a.seq)}${a.seq === seq ? ', this entry' : ''})`);
  return sanitize(`  proposed by ${String(r.approval.proposed_by)}; approved by ${list.join(', ')}`) + '\n';
}

/** A one-line progress bar on a terminal, redrawn at most 10 times a second. */
function progressPrinter(stderr: Writable, label: string): { update: (p: VerifyProgress) => void; done: () => void } {
  let last = 0;
  let drawn = false;
  return {
    update(p) {
      const t = Date.now();
      if (t - last < 100) return;
      last = t;
      drawn = true;
      const pct = p.total_bytes > 0 ? Math.min(100, Math.floor((p.bytes / p.total_bytes) * 100)) : 100;
      stderr.write(`\r\x1b[Kverifying ${label}: ${pct}% (${(p.bytes / 1e6).toFixed(0)}/${(p.total_bytes / 1e6).toFixed(0)} MB, ${p.lines} lines)`);
    },
    done() {
      if (drawn) stderr.write('\r\x1b[K');
    },
  };
}

/** `export`'s database: the flag, or the 0600 file holding it, else the center's environment twins. */
function exportDatabaseUrl(flags: LedgerFlags, env: NodeJS.ProcessEnv): string {
  const direct = stringFlag('database-url', flags.databaseUrl) ?? (env.VAULTMESH_DATABASE_URL || undefined);
  const file = stringFlag('database-url-file', flags.databaseUrlFile) ?? (env.VAULTMESH_DATABASE_URL_FILE || undefined);
  if ((direct === undefined) === (file === undefined)) throw usage('export needs exactly one of --database-url and --database-url-file (or VAULTMESH_DATABASE_URL / VAULTMESH_DATABASE_URL_FILE)');
  let url = direct;
  if (file !== undefined) {
    assertPrivateFile(file);
    url = readFileSync(file, 'utf8').trim();
  }
  if (!/^postgres(ql)?:\/\/\S+$/.test(url!)) throw usage(`${file ?? '--database-url'} does not hold a postgres:// URL`);
  return url!;
}

/** Runs one `ledger` action; resolves to the exit code. Exported for in-process tests. */
export async function runLedger(action: string | undefined, arg: string | undefined, flags: LedgerFlags, deps: LedgerDeps = defaultDeps()): Promise<number> {
  const { stdout, stderr, env } = deps;
  try {
    const dir = stringFlag('dir', flags.dir) ?? env.VAULTMESH_LOG_DIR ?? './logs';
    const log = stringFlag('log', flags.log) ?? 'scans';
    if (log !== 'scans' && log !== 'commands') throw usage(`--log must be scans or commands, not "${log}"`);
    const which: LedgerWhich = log;
    const pubkey = stringFlag('pubkey', flags.pubkey) ?? (env.VAULTMESH_LEDGER_PUBKEY || undefined);
    // verify takes the keys of a rotation too (old,new): each head must be signed by one of them.
    const pubkeyOk = (k: string) => (action === 'verify' ? k.split(',').every((x) => isHex(x, 32)) : isHex(k, 32));
    if (pubkey !== undefined && !pubkeyOk(pubkey)) throw usage('--pubkey must be 64 lowercase hex characters (the center public key; for verify, a comma-separated list after a key rotation)');
    const json = flags.json === true;
    const out = stringFlag('out', flags.out);

    switch (action) {
      case 'root': {
        const root = await ledgerRoot(dir, which);
        stdout.write(json ? `${JSON.stringify({ tree_size: root.tree_size, root_hash: root.root_hash })}\n` : `tree_size ${root.tree_size}\nroot_hash ${root.root_hash}\n`);
        return EXIT.ok;
      }
      case 'verify': {
        const progress = stderr.isTTY === true && !json ? progressPrinter(stderr, log) : undefined;
        let result: VerifyResult;
        try {
          result = await ledgerVerify(dir, which, {
            ...(progress ? { onProgress: progress.update } : {}),
            ...(pubkey ? { pubkey } : {}),
            allowUnsignedTail: flags.allowUnsignedTail === true,
          });
        } finally {
          progress?.done();
        }
        for (const w of result.warnings) stderr.write(`vaultmesh ledger: warning: ${w}\n`);
        stdout.write(json ? `${renderJsonLine(result)}\n` : terminalText(renderVerify(result)));
        return result.ok ? EXIT.ok : EXIT.failure;
      }
      case 'prove': {
        const bundle = await ledgerProve(dir, proveTarget(arg, stringFlag('seq', flags.seq)), { which });
        const text = renderJson(bundle);
        if (out) {
          writeFileAtomicSync(out, text, 0o644);
          stdout.write(json ? `${JSON.stringify({ out, leaf_index: bundle.leaf_index, tree_size: bundle.tree_size })}\n` : `wrote ${out}: leaf ${bundle.leaf_index} of ${bundle.tree_size}\n`);
        } else {
          stdout.write(text);
        }
        return EXIT.ok;
      }
      case 'check': {
        if (!arg) throw usage('usage: vaultmesh ledger check <bundle.json> [--pubkey HEX]');
        const result = ledgerCheck(readBundleFile(String(arg)), pubkey ? { pubkey } : {});
        stdout.write(json ? `${renderJsonLine(result)}\n` : terminalText(renderCheck(result)));
        return result.ok ? EXIT.ok : EXIT.failure;
      }
      case 'vkey': {
        const origin = stringFlag('origin', flags.origin);
        let result: { log: string; origin: string; vkey: string };
        if (origin !== undefined) {
          // From the settings alone (no log dir): the center's --ledger-origin and public key.
          if (!pubkey) throw usage('vkey --origin needs --pubkey (the center public key, cc-key.pem.pub)');
          try {
            assertLedgerOrigin(origin);
          } catch (err) {
            throw usage((err as Error).message);
          }
          result = { log, origin: logOrigin(origin, which), vkey: ledgerVerifierKey(origin, which, fromHex(pubkey, 32)!) };
        } else {
          const cp = readLogCheckpoint(dir, which, pubkey);
          result = { log, origin: cp.origin, vkey: cp.vkey };
        }
        stdout.write(json ? `${JSON.stringify(result)}\n` : `${result.vkey}\n`);
        return EXIT.ok;
      }
      case 'status': {
        // The one online action: the center knows who witnessed what (agents hand their cosignatures to it).
        const api = createApiClient(
          { ...(flags.ccUrl ? { ccUrl: String(flags.ccUrl) } : {}), ...(flags.stateDir ? { stateDir: String(flags.stateDir) } : {}), ...(flags.token ? { token: String(flags.token) } : {}) },
          env,
        );
        const answer = await api.get('/api/ledger/witnesses', witnessesAnswer);
        stdout.write(json ? `${JSON.stringify(answer)}\n` : renderWitnessStatus(answer));
        return EXIT.ok;
      }
      case 'tiles': {
        if (!out) throw usage('usage: vaultmesh ledger tiles --dir D --out T [--log scans|commands]');
        const logs: LedgerWhich[] = flags.log === undefined ? ['scans', 'commands'] : [which];
        const results: TilesResult[] = [];
        for (const l of logs) {
          if (flags.log === undefined && !pubkey && !hasSignedHead(dir, l)) {
            stderr.write(`vaultmesh ledger: warning: ${l}: no signed head yet, skipped (give --pubkey to publish its empty checkpoint)\n`);
            continue;
          }
          results.push(await writeLogTiles(dir, out, l, pubkey));
        }
        for (const r of results) {
          for (const s of r.skipped_bundles) {
            stderr.write(`vaultmesh ledger: warning: ${r.log}: entry bundle ${s.index} not written: line ${s.leaf_index + 1} is ${s.bytes} bytes, more than a bundle entry's 65535\n`);
          }
        }
        stdout.write(
          json
            ? `${JSON.stringify(results)}\n`
            : results.map((r) => `wrote ${out}/${r.log}: checkpoint of ${r.tree_size} leaves, ${r.tiles} hash tiles, ${r.bundles} entry bundles\n`).join(''),
        );
        return EXIT.ok;
      }
      case 'export': {
        if (!out) throw usage('usage: vaultmesh ledger export --database-url URL | --database-url-file FILE --out DIR');
        const r = await exportLedgers(exportDatabaseUrl(flags, env), out);
        if (json) stdout.write(`${JSON.stringify({ out, ...r })}\n`);
        else {
          stdout.write(`exported ${r.envelopes} envelopes (up to seq ${r.last_seq}) to ${terminalText(out)}\n`);
          for (const l of r.ledgers) stdout.write(`  ${l.log}: ${l.heads} signed heads, last over ${l.tree_size} leaves${l.unsigned ? `; ${l.unsigned} leaves after it (not signed yet)` : ''}\n`);
          stdout.write(`check it with: vaultmesh ledger verify --dir ${terminalText(out)} [--log commands]\n`);
        }
        return EXIT.ok;
      }
      default:
        throw usage(action ? `unknown ledger action "${action}": use root, verify, prove, check, vkey, tiles, export or status` : 'missing ledger action: use root, verify, prove, check, vkey, tiles, export or status');
    }
  } catch (err) {
    const { text, exitCode } = renderCliError('vaultmesh ledger', err);
    stderr.write(text);
    return exitCode === 2 ? EXIT.usage : EXIT.failure;
  }
}

/** `vaultmesh ledger` as the CLI runs it (declared in cli/command-table.ts): sets the exit code. */
export async function ledgerAction(action: string, arg: string | undefined, flags: LedgerFlags): Promise<void> {
  const deps = defaultDeps();
  deps.setExitCode(await runLedger(action, arg, flags, deps));
}
