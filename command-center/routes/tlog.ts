/**
 * The ledgers in the C2SP transparency-log formats (docs/LEDGER.md, "C2SP checkpoints and tiles"):
 *
 *   GET /ledger/<log>/checkpoint                 signed note, text/plain
 *   GET /ledger/<log>/tile/<L>/<N>[.p/<W>]       hash tiles
 *   GET /ledger/<log>/tile/entries/<N>[.p/<W>]   entry bundles (the journal lines)
 *   GET /api/ledger/vkey                         the verifier keys and origins
 *   GET /api/ledger/consistency                  RFC 6962 consistency proof between two checkpoint sizes
 *
 * Checkpoints and hash tiles hold no content (only hashes) and may be public (`--ledger-public`: `treeRoutes` is then
 * mounted before the identity middleware); entry bundles hold the findings and always need `ledger:read`.
 */
import { gzipSync } from 'node:zlib';
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { VaultMeshError } from '../../protocol/errors.js';
import { toHex } from '../../protocol/hex.js';
import { parseTilePath, TILE_WIDTH, type TileRef } from '../../protocol/tiles.js';
import { validationError } from '../http/http-errors.js';
import { requireScope } from '../auth/require-operator.js';
import { readEntryBundle, readHashTile } from '../ledger/tile-source.js';
import type { AppEnv, Services } from '../services.js';

const logSchema = z.enum(['scans', 'commands']);
type LogName = z.infer<typeof logSchema>;

/** A full tile or bundle never changes; a partial one is superseded by wider ones as the log grows. */
const IMMUTABLE_SECS = 365 * 24 * 3600;
const PARTIAL_SECS = 60;

function logOf(c: Context<AppEnv>): LogName {
  const log = logSchema.safeParse(c.req.param('log'));
  if (!log.success) throw new VaultMeshError('NOT_FOUND', `no ledger ${JSON.stringify(c.req.param('log'))}: use scans or commands`, { status: 404 });
  return log.data;
}

function tileOf(c: Context<AppEnv>, log: LogName): TileRef {
  const prefix = `/ledger/${log}/tile/`;
  const path = c.req.path;
  const t = path.startsWith(prefix) ? parseTilePath(path.slice(prefix.length)) : undefined;
  if (!t) {
    throw new VaultMeshError('VALIDATION_ERROR', 'invalid tile path: tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>], N as x-prefixed 3-digit groups (c2sp.org/tlog-tiles)', {
      status: 400,
      details: [{ path: 'path', message: path }],
    });
  }
  return t;
}

function cacheControl(services: Services, seconds: number, immutable: boolean): string {
  const who = services.config.ledgerPublic ? 'public' : 'private';
  return `${who}, max-age=${seconds}${immutable ? ', immutable' : ''}`;
}

function octets(c: Context<AppEnv>, body: Buffer, t: TileRef, gzip = false): Response {
  const full = t.width === TILE_WIDTH;
  const headers: Record<string, string> = {
    'content-type': 'application/octet-stream',
    'cache-control': full ? cacheControl(c.get('services'), IMMUTABLE_SECS, true) : cacheControl(c.get('services'), PARTIAL_SECS, false),
  };
  // Entry bundles compress well (JSON lines); the spec lets a log gzip them when the client accepts it.
  if (gzip && /\bgzip\b/.test(c.req.header('accept-encoding') ?? '')) {
    headers['content-encoding'] = 'gzip';
    headers.vary = 'Accept-Encoding';
    return c.body(new Uint8Array(gzipSync(body)), 200, headers);
  }
  return c.body(new Uint8Array(body), 200, headers);
}

/** Checkpoints and hash tiles. */
export function treeRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get('/:log/checkpoint', (c) => {
    const log = logOf(c);
    const note = c.get('services').witnesses.cosignedNote(log);
    if (note === undefined) throw new VaultMeshError('NOT_YET_SIGNED', 'no checkpoint yet', { status: 409 });
    // Mutable: the spec asks that it is not cached beyond a few seconds.
    return c.body(note, 200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache' });
  });
  app.get('/:log/tile/*', async (c, next) => {
    const log = logOf(c);
    const t = tileOf(c, log);
    if (t.level === 'entries') return next(); // entry bundles: entryRoutes, behind ledger:read
    const { ledgers, checkpoints } = c.get('services');
    return octets(c, readHashTile(ledgers[log], { ...t, level: t.level }, checkpoints[log].treeSize()), t);
  });
  return app;
}

/** Entry bundles. */
export function entryRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get('/:log/tile/entries/*', requireScope('ledger:read'), async (c) => {
    const log = logOf(c);
    const t = tileOf(c, log);
    const { ledgers, checkpoints } = c.get('services');
    return octets(c, await readEntryBundle(ledgers[log], t, checkpoints[log].treeSize()), t, true);
  });
  return app;
}

const consistencyQuery = z.strictObject({
  log: logSchema.default('scans'),
  old: z.coerce.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  new: z.coerce.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
});

/** Under /api: verifier keys and consistency proofs. */
export function tlogApiRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get('/ledger/vkey', requireScope('ledger:read'), (c) => {
    const { checkpoints, centerKey } = c.get('services');
    const one = (log: LogName) => ({ origin: checkpoints[log].origin, vkey: checkpoints[log].vkey, public_key: centerKey.publicKeyHex });
    return c.json({ scans: one('scans'), commands: one('commands') });
  });
  app.get('/ledger/witnesses', requireScope('ledger:read'), (c) => {
    const { witnesses } = c.get('services');
    return c.json({ scans: witnesses.status('scans'), commands: witnesses.status('commands') });
  });
  app.get('/ledger/consistency', requireScope('ledger:read'), (c) => {
    const q = consistencyQuery.safeParse(c.req.query());
    if (!q.success) throw validationError(q.error, 'query');
    const { ledgers, checkpoints } = c.get('services');
    const signed = checkpoints[q.data.log].treeSize();
    const newSize = q.data.new ?? signed;
    if (newSize > signed || q.data.old > newSize) {
      throw new VaultMeshError('VALIDATION_ERROR', `need old ≤ new ≤ ${signed} (the latest checkpoint's size)`, {
        status: 400,
        details: [{ path: 'new', message: `old ${q.data.old}, new ${newSize}` }],
      });
    }
    const proof = ledgers[q.data.log].consistencyProof(q.data.old, newSize).map(toHex);
    return c.json({ log: q.data.log, old_size: q.data.old, new_size: newSize, proof });
  });
  return app;
}
