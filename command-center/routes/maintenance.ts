/**
 * Maintenance windows on the operator API: `POST /api/maintenance` (start), `GET /api/maintenance` (open windows;
 * `?recent=1` adds the ended ones kept), `GET /api/maintenance/:id`, `POST /api/maintenance/:id/extend` and
 * `POST /api/maintenance/:id/end`. Writing needs `events:write` (a window is an operator's statement about hosts,
 * like an incident, and it silences alarms); reading needs `nodes:read`. The author is the authenticated identity.
 */
import { Hono } from 'hono';
import { VaultMeshError } from '../../protocol/errors.js';
import { idSchema, nodeIdSchema } from '../../protocol/envelope.js';
import { maintenanceExtendRequestSchema, maintenanceIdSchema, maintenanceStartRequestSchema } from '../../protocol/maintenance.js';
import { listWindows, windowView } from '../ops/maintenance.js';
import { readJson, validationError } from '../http/http-errors.js';
import { requireScope } from '../auth/require-operator.js';
import type { AppEnv } from '../services.js';

const bad = (path: string, message: string) => new VaultMeshError('VALIDATION_ERROR', message, { status: 400, details: [{ path, message }] });

function windowIdParam(raw: string): string {
  const r = maintenanceIdSchema.safeParse(raw);
  if (!r.success) throw bad('id', `window id ${r.error.issues[0]?.message ?? 'is invalid'}`);
  return r.data;
}

/** Reads an optional JSON body: none (or an empty one) is `{}`. */
async function optionalJson(c: Parameters<typeof readJson>[0]): Promise<unknown> {
  const length = c.req.header('content-length');
  if (length === '0' || (length === undefined && !c.req.header('content-type'))) return {};
  return readJson(c);
}

export function maintenanceRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.post('/maintenance', requireScope('events:write'), async (c) => {
    const s = c.get('services');
    const rawKey = c.req.header('idempotency-key');
    const key = rawKey === undefined ? undefined : idSchema.safeParse(rawKey);
    if (key && !key.success) throw bad('Idempotency-Key', `Idempotency-Key ${key.error.issues[0]?.message ?? 'is invalid'}`);
    const parsed = maintenanceStartRequestSchema.safeParse(await readJson(c));
    if (!parsed.success) throw validationError(parsed.error);
    const view = await s.maintenance.start(parsed.data, c.get('identity').name, { idempotencyKey: key?.data });
    return c.json(view, view.duplicate ? 200 : 201);
  });

  app.get('/maintenance', requireScope('nodes:read'), (c) => {
    const s = c.get('services');
    const q = c.req.query();
    for (const k of Object.keys(q)) if (k !== 'recent' && k !== 'node_id') throw bad(k, `unknown query parameter "${k}" (use recent, node_id)`);
    const recent = q.recent;
    if (recent !== undefined && !['', '0', '1', 'true', 'false'].includes(recent)) throw bad('recent', 'recent must be 1, true, 0 or false');
    let nodeId: string | undefined;
    if (q.node_id !== undefined && q.node_id !== '') {
      const r = nodeIdSchema.safeParse(q.node_id);
      if (!r.success) throw bad('node_id', `node_id ${r.error.issues[0]?.message ?? 'is invalid'}`);
      nodeId = r.data;
    }
    const nowMs = s.now().getTime();
    const items = listWindows(s.state, nowMs, { recent: recent === '' || recent === '1' || recent === 'true', ...(nodeId ? { nodeId } : {}) });
    return c.json({ items, active: items.filter((w) => w.state === 'active').length, scheduled: items.filter((w) => w.state === 'scheduled').length });
  });

  app.get('/maintenance/:id', requireScope('nodes:read'), (c) => {
    const s = c.get('services');
    const id = windowIdParam(c.req.param('id'));
    const w = s.state.maintenance?.windows.get(id);
    if (!w) throw new VaultMeshError('MAINTENANCE_NOT_FOUND', `no maintenance window ${id}`, { status: 404 });
    return c.json(windowView(s.state, w, s.now().getTime()));
  });

  app.post('/maintenance/:id/extend', requireScope('events:write'), async (c) => {
    const s = c.get('services');
    const id = windowIdParam(c.req.param('id'));
    const parsed = maintenanceExtendRequestSchema.safeParse(await readJson(c));
    if (!parsed.success) throw validationError(parsed.error);
    return c.json(await s.maintenance.extend(id, parsed.data, c.get('identity').name));
  });

  app.post('/maintenance/:id/end', requireScope('events:write'), async (c) => {
    const s = c.get('services');
    const id = windowIdParam(c.req.param('id'));
    const body = await optionalJson(c);
    if (typeof body !== 'object' || body === null || Array.isArray(body) || Object.keys(body).length) throw bad('body', 'send no body (or {})');
    return c.json(await s.maintenance.end(id, c.get('identity').name));
  });

  return app;
}
