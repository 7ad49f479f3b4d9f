/**
 * A minimal c2sp.org/tlog-witness witness for tests: `POST /add-checkpoint` with the spec's checks, in order (unknown
 * origin 404, no trusted signature 403, old > size 400, old ≠ its size 409 `text/x.tlog.size`, same size other root
 * 409, bad consistency proof 422), then a `cosignature/v1` and the new state, checked and updated in one synchronous
 * step (no race between requests). Independent of the center's code apart from the pure protocol modules.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { openCheckpoint } from '../protocol/checkpoint.js';
import { formatCosignerKey, signCosignature } from '../protocol/cosignature.js';
import { keyPairFromSeed, type KeyPair } from '../protocol/keys.js';
import { EMPTY_ROOT, verifyConsistency } from '../protocol/merkle.js';
import { NoteError, ed25519NoteVerifier, parseNote } from '../protocol/signed-note.js';
import { parseAddCheckpoint, TLOG_SIZE_CONTENT_TYPE } from '../protocol/tlog-witness.js';

export interface MinimalWitness {
  url: string;
  name: string;
  key: KeyPair;
  vkey: string;
  /** Latest cosigned checkpoint per origin. */
  state: Map<string, { size: number; root: Buffer }>;
  /** Every answer's status, in order. */
  statuses: number[];
  /** Resolves when `pred` holds after some request. */
  waitFor(pred: (w: MinimalWitness) => boolean): Promise<void>;
  close(): Promise<void>;
}

export async function startMinimalWitness(trusted: Record<string, Uint8Array>, name = 'witness.example/w1', seed = Buffer.alloc(32, 7)): Promise<MinimalWitness> {
  const key = keyPairFromSeed(seed);
  const waiters: { pred: (w: MinimalWitness) => boolean; resolve: () => void }[] = [];
  const answer = (status: number, body: string, type = 'text/plain; charset=utf-8') => ({ status, body, type });
  const handle = (body: string): { status: number; body: string; type: string } => {
    const req = parseAddCheckpoint(body);
    if (!req) return answer(400, 'malformed request\n');
    let origin: string;
    try {
      origin = parseNote(req.checkpoint).text.split('\n')[0]!;
    } catch {
      return answer(400, 'malformed checkpoint\n');
    }
    const logKey = trusted[origin];
    if (!logKey) return answer(404, 'unknown origin\n');
    let cp;
    try {
      cp = openCheckpoint(req.checkpoint, [ed25519NoteVerifier({ name: origin, publicKey: logKey })], origin);
    } catch (err) {
      return answer(err instanceof NoteError && err.code === 'MALFORMED_NOTE' ? 400 : 403, 'not signed by the log\n');
    }
    const { treeSize, rootHash } = cp.checkpoint;
    if (req.oldSize > treeSize) return answer(400, 'old size beyond the checkpoint\n');
    const mine = w.state.get(origin) ?? { size: 0, root: EMPTY_ROOT };
    if (req.oldSize !== mine.size) return answer(409, `${mine.size}\n`, TLOG_SIZE_CONTENT_TYPE);
    if (req.oldSize === treeSize) {
      if (!rootHash.equals(mine.root)) return answer(409, `${mine.size}\n`, TLOG_SIZE_CONTENT_TYPE);
    } else if (req.oldSize === 0 ? req.proof.length !== 0 : !verifyConsistency(req.oldSize, treeSize, mine.root, rootHash, req.proof)) {
      return answer(422, 'consistency proof does not verify\n');
    }
    w.state.set(origin, { size: treeSize, root: rootHash });
    return answer(200, signCosignature(cp.text, { name, seed: key.seed }, Math.floor(Date.now() / 1000)));
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = req.method === 'POST' && req.url === '/add-checkpoint' ? handle(Buffer.concat(chunks).toString('utf8')) : answer(404, 'not found\n');
      w.statuses.push(r.status);
      res.writeHead(r.status, { 'content-type': r.type }).end(r.body);
      for (const x of waiters.splice(0)) (x.pred(w) ? x.resolve : () => waiters.push(x))();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const w: MinimalWitness = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    name,
    key,
    vkey: formatCosignerKey(name, key.publicKey),
    state: new Map(),
    statuses: [],
    waitFor: (pred) => (pred(w) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ pred, resolve }))),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
  return w;
}
