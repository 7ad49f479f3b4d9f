/**
 * Operator API for the center's signing key: `GET /api/keys` (the current key, the retired ones and the rotation
 * statements) and `POST /api/keys/rotate` (admin scope; `{ "prepare": true }` only writes the next key on this
 * host, for replicas that must all hold it before the rotation is announced).
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { keyIdSchema } from '../../protocol/hex.js';
import { inWindow } from '../../protocol/center-key-rotation.js';
import { readJson, validationError } from '../http/http-errors.js';
import { requireScope } from '../auth/require-operator.js';
import type { AppEnv, Services } from '../services.js';

const rotateSchema = z
  .object({
    /** Overrides --center-key-overlap-secs for this rotation. */
    overlap_secs: z.number().int().min(1).max(366 * 86_400).optional(),
    /** Only make (or show) the next key on this host; announce nothing. */
    prepare: z.boolean().optional(),
    /** The key to rotate away from: refused with 409 CENTER_KEY_CHANGED when another is current (a retried request). */
    from_key_id: keyIdSchema.optional(),
  })
  .strict();

/** The key listing: shared by the API, the CLI (through it) and the console's keys panel. */
export function keysView(s: Services) {
  const rotations = [...(s.state.centerKeys?.rotations ?? [])].sort((a, b) => a.statement.serial - b.statement.serial);
  const last = rotations.at(-1)?.statement;
  const now = s.now();
  const status = s.centerKeyRing.status();
  const prepared = s.centerKeyRing.prepared();
  return {
    public_key: s.centerKey.publicKeyHex,
    key_id: s.centerKey.keyId,
    since: last?.effective_at ?? null,
    status: status.state === 'ok' ? 'active' : 'not-held',
    prepared: prepared && prepared.publicKeyHex !== s.centerKey.publicKeyHex ? { public_key: prepared.publicKeyHex, key_id: prepared.keyId, file: s.centerKeyRing.nextFile } : null,
    previous: rotations
      .map((r) => ({
        public_key: r.statement.old_public_key,
        key_id: r.statement.old_key_id,
        retired_at: r.statement.effective_at,
        overlap_until: r.statement.overlap_until,
        /** Agents still accept commands signed by it. */
        in_overlap: inWindow(r.statement, now),
      }))
      .reverse(),
    rotations: rotations.map((r) => ({ seq: r.seq, author: r.author, statement: r.statement, old_signature: r.old_signature, new_signature: r.new_signature })).reverse(),
  };
}

export function keyRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.get('/keys', requireScope('nodes:read'), (c) => c.json(keysView(c.get('services'))));

  app.post('/keys/rotate', requireScope('admin'), async (c) => {
    const s = c.get('services');
    const raw = await readJson(c);
    const parsed = rotateSchema.safeParse(raw ?? {});
    if (!parsed.success) throw validationError(parsed.error);
    if (parsed.data.prepare) {
      const { key, created } = s.centerKeyRing.prepare();
      return c.json({ prepared: { public_key: key.publicKeyHex, key_id: key.keyId, created, file: s.centerKeyRing.nextFile } }, created ? 201 : 200);
    }
    const r = await s.centerKeyRotator.rotate({ author: c.get('identity').name, overlapSecs: parsed.data.overlap_secs ?? s.config.centerKeyOverlapSecs, ...(parsed.data.from_key_id !== undefined ? { fromKeyId: parsed.data.from_key_id } : {}) });
    return c.json({ rotation: { seq: r.seq, author: r.author, statement: r.statement, old_signature: r.old_signature, new_signature: r.new_signature }, keys: keysView(s) }, 201);
  });

  return app;
}
