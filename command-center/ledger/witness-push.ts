/**
 * Pushes the ledgers' checkpoints to external witnesses that speak c2sp.org/tlog-witness (`POST
 * <url>/add-checkpoint` with the old size and a consistency proof), and keeps the cosignatures they return like the
 * agents' (witnesses.ts). Per witness and log it remembers the size the witness last cosigned: unknown at start,
 * it sends `old 0` and learns the size from the 409 answer (`text/x.tlog.size`), then retries once with the proof
 * from it. A witness that holds a larger tree than ours, or refuses our proof (422), is reported through `onError`:
 * that is what a witness is for.
 */
import { parseCheckpointText } from '../../protocol/checkpoint.js';
import { verifyCosignature } from '../../protocol/cosignature.js';
import { VaultMeshError } from '../../protocol/errors.js';
import type { CheckpointLog } from '../../protocol/ledger-checkpoints.js';
import { SIG_TYPE_COSIGNATURE_V1, parseNote, parseVerifierKey, type VerifierKey } from '../../protocol/signed-note.js';
import { formatAddCheckpoint, parseTlogSize } from '../../protocol/tlog-witness.js';
import type { CheckpointWriter } from './checkpoints.js';
import type { Ledger } from './ledger.js';
import type { WitnessBook } from './witnesses.js';

export interface ExternalWitness {
  /** Submission prefix: `<url>/add-checkpoint` is posted to. */
  url: string;
  /** Verifier key of its cosignatures (`<name>+<key id>+<base64(0x04 ‖ key)>`). */
  vkey: string;
}

/** Parses `VAULTMESH_LEDGER_WITNESSES`: comma-separated `<url> <vkey>` pairs. Throws CONFIG_INVALID. */
export function parseWitnessList(value: string): ExternalWitness[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const [url, vkey, ...rest] = entry.split(/\s+/);
      const bad = (why: string) => new VaultMeshError('CONFIG_INVALID', `invalid witness ${JSON.stringify(entry)}: ${why} (expected "<https url> <verifier key>")`);
      if (!url || !vkey || rest.length) throw bad('two fields needed');
      if (!/^https?:\/\/[^\s]+$/.test(url)) throw bad('not an http(s) URL');
      let k: VerifierKey;
      try {
        k = parseVerifierKey(vkey);
      } catch (err) {
        throw bad((err as Error).message);
      }
      if (k.type !== SIG_TYPE_COSIGNATURE_V1) throw bad('the key is not a cosignature/v1 (type 0x04) key');
      return { url: url.replace(/\/+$/, ''), vkey };
    });
}

export interface WitnessPusher {
  /** Pushes the latest checkpoint of `log` to every witness (serialised per witness and log; failures go to onError). */
  push(log: CheckpointLog): Promise<void>;
  /** Sizes each witness last cosigned, by log (what `old` will be). */
  sizes(): Record<string, Partial<Record<CheckpointLog, number>>>;
}

export interface WitnessPusherOptions {
  witnesses: readonly ExternalWitness[];
  ledgers: Record<CheckpointLog, Pick<Ledger, 'consistencyProof'>>;
  checkpoints: Record<CheckpointLog, Pick<CheckpointWriter, 'note'>>;
  book: Pick<WitnessBook, 'keepExternal'>;
  fetch?: typeof fetch;
  timeoutMs?: number;
  onError: (err: Error) => void;
}

export function createWitnessPusher(opts: WitnessPusherOptions): WitnessPusher {
  const doFetch = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const witnesses = opts.witnesses.map((w) => ({ ...w, key: parseVerifierKey(w.vkey), known: {} as Partial<Record<CheckpointLog, number>>, queue: {} as Partial<Record<CheckpointLog, Promise<void>>> }));

  async function post(w: (typeof witnesses)[number], oldSize: number, note: string, log: CheckpointLog, size: number): Promise<Response> {
    const proof = oldSize <= size ? opts.ledgers[log].consistencyProof(oldSize, size) : [];
    return doFetch(`${w.url}/add-checkpoint`, { method: 'POST', body: formatAddCheckpoint(oldSize, proof, note), signal: AbortSignal.timeout(timeoutMs) });
  }

  async function pushOne(w: (typeof witnesses)[number], log: CheckpointLog): Promise<void> {
    const note = opts.checkpoints[log].note();
    if (note === undefined) return;
    const text = parseNote(note).text;
    const size = parseCheckpointText(text).treeSize;
    let res = await post(w, w.known[log] ?? 0, note, log, size);
    if (res.status === 409 && (res.headers.get('content-type') ?? '').startsWith('text/x.tlog.size')) {
      const theirs = parseTlogSize(await res.text());
      if (theirs === undefined) throw new Error(`witness ${w.key.name}: 409 without a size`);
      if (theirs > size) throw new Error(`witness ${w.key.name} has cosigned ${log} up to size ${theirs}, more than our ${size}: our log is behind what it witnessed (a restored or rewritten log?)`);
      w.known[log] = theirs;
      if (theirs === size) return; // already cosigned this size (its cosignature came then); nothing new to add
      res = await post(w, theirs, note, log, size);
    }
    const body = await res.text();
    if (res.status !== 200) throw new Error(`witness ${w.key.name} refused the ${log} checkpoint of size ${size}: ${res.status} ${body.trim().slice(0, 200)}`);
    let kept = 0;
    for (const line of body.split('\n').filter(Boolean)) {
      let sigs;
      try {
        sigs = parseNote(`${text}\n${line}\n`).signatures;
      } catch {
        continue;
      }
      const t = verifyCosignature(text, sigs[0]!, { name: w.key.name, publicKey: w.key.publicKey });
      if (t === undefined) continue; // not its key: ignored, as the spec requires
      opts.book.keepExternal(w.key.name, log, { tree_size: size, timestamp: t, line: `${line}\n` });
      kept++;
    }
    if (kept === 0) throw new Error(`witness ${w.key.name} answered 200 without a cosignature by its key`);
    w.known[log] = size;
  }

  return {
    push(log) {
      return Promise.all(
        witnesses.map((w) => {
          const run = (w.queue[log] ?? Promise.resolve()).then(() => pushOne(w, log)).catch((err: unknown) => opts.onError(err as Error));
          w.queue[log] = run;
          return run;
        }),
      ).then(() => undefined);
    },
    sizes() {
      return Object.fromEntries(witnesses.map((w) => [w.key.name, { ...w.known }]));
    },
  };
}
