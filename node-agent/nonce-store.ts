/**
 * The agent's persistent memory of commands it accepted: every nonce it ran (so a replay is refused, also after a
 * restart) and the receipt it produced (so a redelivered command is answered, not run again). One JSONL file in
 * the state dir (0600): a line is appended and fsynced before a command runs; entries are dropped once their
 * command is past expiry plus the clock-skew margin (a command that old is refused as EXPIRED anyway), and the
 * file is rewritten atomically when dead lines outnumber live ones.
 *
 * Lines: `{"t":"n","n":nonce,"c":command_id,"e":expires_ms}` and `{"t":"r","c":command_id,"e":expires_ms,"r":receipt}`.
 */
import { closeSync, fsyncSync, openSync, readFileSync, writeSync, chmodSync } from 'node:fs';
import { writeFileAtomicSync } from '../lib/atomic-file.js';
import type { SignedReceipt } from '../protocol/command.js';

export interface NonceEntry {
  commandId: string;
  expiresMs: number;
}

export interface NonceStore {
  /** The command that used `nonce`, if any (live entries only). */
  get(nonce: string): NonceEntry | undefined;
  has(nonce: string): boolean;
  /** Durably records a nonce before its command runs. */
  record(nonce: string, commandId: string, expiresMs: number): void;
  receipt(commandId: string): SignedReceipt | undefined;
  /** Durably stores the receipt of a command (for redeliveries). */
  storeReceipt(commandId: string, expiresMs: number, receipt: SignedReceipt): void;
  /** Drops entries past expiry + margin; rewrites the file when worthwhile. Returns how many were dropped. */
  prune(): number;
  readonly size: number;
  close(): void;
}

export interface NonceStoreOptions {
  file: string;
  now?: () => number;
  /** Kept this long past a command's expiry (≥ the agent's clock-skew allowance). */
  retainMs?: number;
  /** Compact when at least this many dead lines accumulated (and they outnumber live entries). */
  compactAfter?: number;
}

export function openNonceStore(opts: NonceStoreOptions): NonceStore {
  const now = opts.now ?? Date.now;
  const retainMs = opts.retainMs ?? 10 * 60_000;
  const compactAfter = opts.compactAfter ?? 1000;
  const nonces = new Map<string, NonceEntry>();
  const receipts = new Map<string, { expiresMs: number; receipt: SignedReceipt }>();
  let lines = 0;

  let text = '';
  try {
    text = readFileSync(opts.file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  for (const line of text.split('\n')) {
    if (!line) continue;
    let e: any;
    try {
      e = JSON.parse(line);
    } catch {
      continue; // a torn last line from a crash mid-append: its command never ran (record happens before running)
    }
    lines++;
    if (e?.t === 'n' && typeof e.n === 'string') nonces.set(e.n, { commandId: String(e.c), expiresMs: Number(e.e) });
    else if (e?.t === 'r' && typeof e.c === 'string' && e.r) receipts.set(e.c, { expiresMs: Number(e.e), receipt: e.r });
  }

  let fd = openSync(opts.file, 'a', 0o600);
  chmodSync(opts.file, 0o600);
  let fdOpen = true;
  // Terminate a torn last line so the next record starts on a line of its own.
  if (text && !text.endsWith('\n')) writeSync(fd, '\n');
  const append = (obj: unknown) => {
    writeSync(fd, `${JSON.stringify(obj)}\n`);
    fsyncSync(fd);
    lines++;
  };

  const store: NonceStore = {
    get: (nonce) => nonces.get(nonce),
    has: (nonce) => nonces.has(nonce),
    record(nonce, commandId, expiresMs) {
      append({ t: 'n', n: nonce, c: commandId, e: expiresMs });
      nonces.set(nonce, { commandId, expiresMs });
    },
    receipt: (id) => receipts.get(id)?.receipt,
    storeReceipt(commandId, expiresMs, receipt) {
      append({ t: 'r', c: commandId, e: expiresMs, r: receipt });
      receipts.set(commandId, { expiresMs, receipt });
    },
    prune() {
      const cutoff = now() - retainMs;
      let dropped = 0;
      for (const [n, e] of nonces) if (e.expiresMs < cutoff) (nonces.delete(n), dropped++);
      for (const [c, r] of receipts) if (r.expiresMs < cutoff) (receipts.delete(c), dropped++);
      const live = nonces.size + receipts.size;
      if (lines - live >= compactAfter && lines - live > live) {
        const out: string[] = [];
        for (const [n, e] of nonces) out.push(JSON.stringify({ t: 'n', n, c: e.commandId, e: e.expiresMs }));
        for (const [c, r] of receipts) out.push(JSON.stringify({ t: 'r', c, e: r.expiresMs, r: r.receipt }));
        // Atomic replace: a crash leaves either the old or the new file, never a half-written one.
        writeFileAtomicSync(opts.file, out.length ? `${out.join('\n')}\n` : '', 0o600);
        lines = out.length;
        // Our append descriptor still points at the replaced inode.
        closeSync(fd);
        fd = openSync(opts.file, 'a', 0o600);
      }
      return dropped;
    },
    get size() {
      return nonces.size;
    },
    close() {
      if (fdOpen) closeSync(fd);
      fdOpen = false;
    },
  };
  store.prune();
  return store;
}
