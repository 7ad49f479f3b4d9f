/**
 * Operator API for signed commands: issue (policy-checked, signed, journaled, queued, or proposed when the policy
 * wants approvals), approve or deny a proposal, show, list.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { idSchema, nodeIdSchema } from '../../protocol/envelope.js';
import { VaultMeshError } from '../../protocol/errors.js';
import { actionNameSchema } from '../../protocol/command.js';
import { COMMAND_STATUSES, commandView } from '../commands/command-store.js';
import { parseJsonBytes, readJson, validationError } from '../http/http-errors.js';
import { requireScope } from '../auth/require-operator.js';
import type { AppEnv } from '../services.js';

const issueSchema = z
  .object({
    node_id: nodeIdSchema,
    action: actionNameSchema,
    args: z.record(z.string(), z.unknown()).default({}),
    ttl_secs: z.number().int().min(10).max(86_400).optional(),
  })
  .strict();

const decisionSchema = z.object({ reason: z.string().trim().min(1).max(512).optional() }).strict();

const listQuerySchema = z.object({
  node_id: nodeIdSchema.optional(),
  status: z.enum(COMMAND_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export function commandRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.post('/commands', requireScope('commands:write'), async (c) => {
    const parsed = issueSchema.safeParse(await readJson(c));
    if (!parsed.success) throw validationError(parsed.error);
    const b = parsed.data;
    const rawKey = c.req.header('idempotency-key');
    const keyCheck = rawKey === undefined ? undefined : idSchema.safeParse(rawKey);
    if (keyCheck && !keyCheck.success) throw validationError(keyCheck.error, 'Idempotency-Key header');
    const key = keyCheck?.data;
    // A retry with the same key answers the first command (200) instead of signing a second one.
    const { record, duplicate } = await c.get('services').commands.issueOnce({
      nodeId: b.node_id,
      action: b.action,
      args: b.args,
      ...(b.ttl_secs !== undefined ? { ttlSecs: b.ttl_secs } : {}),
      author: c.get('identity').name,
      ...(key !== undefined ? { idempotencyKey: key } : {}),
    });
    // 202: accepted as a proposal, nothing signed yet (docs/API.md, "Approvals").
    return c.json({ ...commandView(record), ...(duplicate ? { duplicate: true } : {}) }, duplicate ? 200 : record.status === 'proposed' ? 202 : 201);
  });

  // The decision's author is the authenticated identity, never a body field; approving needs what issuing needs.
  for (const kind of ['approve', 'deny'] as const) {
    app.post(`/commands/:id/${kind}`, requireScope('commands:write'), async (c) => {
      const id = idSchema.safeParse(c.req.param('id'));
      if (!id.success) throw validationError(id.error, 'command id');
      // The body is optional (`{"reason": "..."}`); an empty one decides without a reason.
      const bytes = Buffer.from(await c.req.arrayBuffer());
      if (bytes.length && !/^application\/(?:[\w.+-]+\+)?json\b/i.test(c.req.header('content-type') ?? '')) {
        throw new VaultMeshError('UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json', { status: 415 });
      }
      const body = decisionSchema.safeParse(bytes.length ? parseJsonBytes(bytes) : {});
      if (!body.success) throw validationError(body.error);
      const rec = await c.get('services').commands.decide({
        id: id.data,
        author: c.get('identity').name,
        kind,
        ...(body.data.reason !== undefined ? { reason: body.data.reason } : {}),
      });
      return c.json(commandView(rec));
    });
  }

  app.get('/commands', requireScope('nodes:read'), (c) => {
    const q = listQuerySchema.safeParse(c.req.query());
    if (!q.success) throw validationError(q.error, 'query');
    const list = c.get('services').commands.list({
      ...(q.data.node_id ? { nodeId: q.data.node_id } : {}),
      ...(q.data.status ? { status: q.data.status } : {}),
      limit: q.data.limit,
    });
    return c.json(list.map(commandView));
  });

  app.get('/commands/:id', requireScope('nodes:read'), (c) => {
    const rec = c.get('services').commands.get(c.req.param('id'));
    if (!rec) throw new VaultMeshError('NOT_FOUND', 'no such command', { status: 404 });
    return c.json(commandView(rec));
  });

  return app;
}
