/**
 * The communication API for operators and bots: `POST /api/events` (notes, incidents, acks, resolves, tags — the
 * registry in protocol/event-kinds.ts), `GET /api/events` (paged history of envelopes) and `GET /api/incidents`.
 * The author is always the authenticated identity; what a caller claims (`author` in the body, `X-VM-Author`) is
 * kept only as `on_behalf_of`.
 */
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { idSchema, kindSchema, nodeIdSchema, rfc3339Schema, type EnvelopeDraft } from '../../protocol/envelope.js';
import { VaultMeshError } from '../../protocol/errors.js';
import { validateClientEvent } from '../../protocol/event-kinds.js';
import type { EventQuery } from '../store/event-log.js';
import { readJson, validationError } from '../http/http-errors.js';
import { listOpenIncidents } from '../fleet/incidents.js';
import { requireScope } from '../auth/require-operator.js';
import type { AppEnv } from '../services.js';

export const EVENTS_PAGE = { defaultLimit: 100, maxLimit: 1000, maxKinds: 32 } as const;

/** A name someone acts for: printable, no control characters (it ends up in logs and the console). */
const onBehalfOfSchema = z.string().trim().min(1).max(256).regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters');

/** Our own input and vm-event-envelope-v0 (`payload` for `body`, optional `author`) in one strict shape. */
export const postEventSchema = z
  .object({
    schema: z.literal('vm-event-envelope-v0').optional(),
    kind: kindSchema,
    node_id: nodeIdSchema.optional(),
    body: z.unknown().optional(),
    payload: z.unknown().optional(),
    id: idSchema.optional(),
    author: onBehalfOfSchema.optional(),
  })
  .strict()
  .refine((v) => !(v.body !== undefined && v.payload !== undefined), { message: 'send either body or payload (its vm-event-envelope-v0 alias), not both', path: ['payload'] });

const bad = (path: string, message: string) => new VaultMeshError('VALIDATION_ERROR', message, { status: 400, details: [{ path, message }] });

function headerValue(c: Context<AppEnv>, name: string, schema: z.ZodType<string>): string | undefined {
  const raw = c.req.header(name);
  if (raw === undefined) return undefined;
  const r = schema.safeParse(raw);
  if (!r.success) throw bad(name, `${name}: ${r.error.issues[0]?.message ?? 'invalid'}`);
  return r.data;
}

/** Parses the query of `GET /api/events` into an EventQuery, or throws one 400 naming the bad parameter. */
export function parseEventQuery(params: Record<string, string>): EventQuery {
  const known = new Set(['since', 'kind', 'node_id', 'limit', 'order', 'before']);
  for (const k of Object.keys(params)) if (!known.has(k)) throw bad(k, `unknown query parameter "${k}" (use since, kind, node_id, limit, order, before)`);
  const q: EventQuery = { limit: EVENTS_PAGE.defaultLimit };
  const { since, kind, node_id, limit, order, before } = params;
  if (order !== undefined && order !== '') {
    if (order !== 'asc' && order !== 'desc') throw bad('order', 'order must be asc (oldest first, the default) or desc (newest first)');
    q.order = order;
  }
  if (before !== undefined && before !== '') {
    if (q.order !== 'desc') throw bad('before', 'before pages back in time: use it with order=desc');
    if (!/^\d{1,15}$/.test(before)) throw bad('before', 'before must be a seq (non-negative integer)');
    q.before = Number(before);
  }
  if (since !== undefined && since !== '') {
    if (/^\d{1,15}$/.test(since)) q.since = { seq: Number(since) };
    else if (rfc3339Schema.safeParse(since).success) q.since = { tsMs: Date.parse(since) };
    else throw bad('since', 'since must be a seq (non-negative integer) or an RFC 3339 time such as 2025-01-31T12:00:00Z');
  }
  if (kind !== undefined && kind !== '') {
    const kinds = kind.split(',').map((k) => k.trim());
    if (kinds.length > EVENTS_PAGE.maxKinds) throw bad('kind', `at most ${EVENTS_PAGE.maxKinds} kinds`);
    for (const k of kinds) if (!kindSchema.safeParse(k).success) throw bad('kind', `"${k}" is not a kind (lowercase letters, digits, _ . -)`);
    q.kinds = kinds;
  }
  if (node_id !== undefined && node_id !== '') {
    const r = nodeIdSchema.safeParse(node_id);
    if (!r.success) throw bad('node_id', `node_id ${r.error.issues[0]?.message ?? 'is invalid'}`);
    q.nodeId = r.data;
  }
  if (limit !== undefined && limit !== '') {
    const n = /^\d{1,7}$/.test(limit) ? Number(limit) : NaN;
    if (!(n >= 1 && n <= EVENTS_PAGE.maxLimit)) throw bad('limit', `limit must be an integer from 1 to ${EVENTS_PAGE.maxLimit}`);
    q.limit = n;
  }
  return q;
}

export function eventRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.post('/events', requireScope('events:write'), async (c) => {
    const s = c.get('services');
    const identity = c.get('identity');
    const parsed = postEventSchema.safeParse(await readJson(c));
    if (!parsed.success) throw validationError(parsed.error);
    const input = parsed.data;

    const key = headerValue(c, 'idempotency-key', idSchema);
    if (key !== undefined && input.id !== undefined && key !== input.id) throw bad('id', 'Idempotency-Key and body id differ; send one or make them equal');
    const id = key ?? input.id;
    // A retry is answered before validating against current state: the original may have changed it (a resolve).
    if (id !== undefined) {
      const seq = s.seenEnvelopeId(c.get('identity').name, id);
      if (seq !== undefined) return c.json({ duplicate: true, id, seq }, 200);
    }

    const headerAuthor = headerValue(c, 'x-vm-author', onBehalfOfSchema);
    const onBehalfOf = headerAuthor ?? input.author;

    let nodeId = input.node_id;
    const result = validateClientEvent(input.kind, input.body ?? input.payload, nodeId);
    if (!result.ok) throw new VaultMeshError(result.code, result.issues[0]!.message, { status: 400, details: result.issues });
    const event = result.event;

    if (event.kind === 'tag' && !s.state.nodes.has(nodeId!)) throw new VaultMeshError('NOT_FOUND', `no node ${nodeId}`, { status: 404 });
    if (event.kind === 'ack' || event.kind === 'resolve') {
      const inc = s.state.incidents.open.get(event.body.incident_id);
      if (!inc) throw new VaultMeshError('NOT_FOUND', `no open incident ${event.body.incident_id}`, { status: 404 });
      if (nodeId !== undefined && inc.node_id !== undefined && nodeId !== inc.node_id) {
        throw bad('node_id', `incident ${inc.id} is about node ${inc.node_id}, not ${nodeId}`);
      }
      nodeId ??= inc.node_id; // so filtering the history by node finds the whole incident
    }

    const draft: EnvelopeDraft = {
      ...(id !== undefined ? { id } : {}),
      kind: event.kind,
      ...(nodeId !== undefined ? { node_id: nodeId } : {}),
      author: identity.name,
      ...(onBehalfOf !== undefined ? { on_behalf_of: onBehalfOf } : {}),
      body: event.body as Record<string, unknown>,
    };
    const { envelope, duplicate } = await s.submit(draft);
    if (duplicate) return c.json({ duplicate: true, id: envelope.id, seq: envelope.seq }, 200);
    return c.json({ duplicate: false, id: envelope.id, seq: envelope.seq, envelope }, 201);
  });

  app.get('/events', requireScope('events:read'), async (c) => {
    const s = c.get('services');
    const q = parseEventQuery(c.req.query());
    const page = await s.eventLog.query(q);
    return c.json({ items: page.items, next: page.next });
  });

  app.get('/incidents', requireScope('events:read'), (c) => {
    const s = c.get('services');
    const nodeId = c.req.query('node_id');
    if (nodeId !== undefined && !nodeIdSchema.safeParse(nodeId).success) throw bad('node_id', 'node_id is not a valid node id');
    const items = listOpenIncidents(s.state, nodeId ? { node_id: nodeId } : {});
    return c.json({ items, open: s.state.incidents.open.size, resolved: s.state.incidents.resolved });
  });

  return app;
}
