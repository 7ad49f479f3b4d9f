/**
 * The tlog-witness protocol (c2sp.org/tlog-witness), both ends: the `add-checkpoint` request body a log POSTs to
 * `<submission prefix>/add-checkpoint`:
 *
 *   old <size>\n
 *   <base64 consistency proof hash>\n   (0 to 63 lines)
 *   \n
 *   <checkpoint note, with its signatures>
 *
 * and the answers: 200 with cosignature lines, 409 `text/x.tlog.size` with the witness's size. Pure (no IO).
 */
import { decodeBase64 } from './signed-note.js';

/** At most this many proof lines may be sent. */
export const MAX_PROOF_LINES = 63;
export const TLOG_SIZE_CONTENT_TYPE = 'text/x.tlog.size';

export function formatAddCheckpoint(oldSize: number, proof: readonly Uint8Array[], checkpointNote: string): string {
  if (!Number.isSafeInteger(oldSize) || oldSize < 0) throw new RangeError(`invalid old size ${oldSize}`);
  if (proof.length > MAX_PROOF_LINES) throw new RangeError(`a consistency proof has at most ${MAX_PROOF_LINES} hashes`);
  return `old ${oldSize}\n${proof.map((h) => `${Buffer.from(h).toString('base64')}\n`).join('')}\n${checkpointNote}`;
}

export interface AddCheckpointRequest {
  oldSize: number;
  proof: Buffer[];
  checkpoint: string;
}

/** Parses an add-checkpoint body; undefined when it is not that format (a witness answers 400). */
export function parseAddCheckpoint(body: string): AddCheckpointRequest | undefined {
  const m = /^old (0|[1-9][0-9]{0,15})\n/.exec(body);
  if (!m) return undefined;
  let at = m[0].length;
  const proof: Buffer[] = [];
  for (;;) {
    const nl = body.indexOf('\n', at);
    if (nl < 0) return undefined;
    const line = body.slice(at, nl);
    at = nl + 1;
    if (line === '') break;
    const h = decodeBase64(line);
    if (!h || h.length !== 32 || proof.length === MAX_PROOF_LINES) return undefined;
    proof.push(h);
  }
  const oldSize = Number(m[1]);
  return Number.isSafeInteger(oldSize) ? { oldSize, proof, checkpoint: body.slice(at) } : undefined;
}

/** The witness's size from a 409 `text/x.tlog.size` body (`<decimal>\n`); undefined otherwise. */
export function parseTlogSize(body: string): number | undefined {
  const m = /^(0|[1-9][0-9]{0,15})\n$/.exec(body);
  return m && Number.isSafeInteger(Number(m[1])) ? Number(m[1]) : undefined;
}
