/**
 * Agent side of commands, mounted inside routes/agent.ts behind requireEnrolledNode (so `nodeId` and `rawBody` are
 * set): `GET /commands?wait=<secs>` long-poll and `POST /receipts`.
 */
import type { Hono } from 'hono';
import { z } from 'zod';
import { parseJsonBytes, validationError } from '../http/http-errors.js';
import { longRequest } from '../http/long-request.js';
import type { AppEnv } from '../services.js';

const pollQuerySchema = z.object({ wait: z.coerce.number().min(0).max(3600).optional() });

export function registerAgentCommandRoutes(app: Hono<AppEnv>): void {
  app.get('/commands', longRequest('long-poll'), async (c) => {
    const services = c.get('services');
    const q = pollQuerySchema.safeParse(c.req.query());
    if (!q.success) throw validationError(q.error, 'query');
    const maxSecs = services.config.commandPollSecs;
    const waitSecs = Math.min(q.data.wait ?? maxSecs, maxSecs);
    const commands = await services.commands.poll(c.get('nodeId'), waitSecs * 1000, c.req.raw.signal);
    return c.json({ commands, server_time: services.now().toISOString() });
  });

  app.post('/receipts', async (c) => {
    const services = c.get('services');
    const { record, duplicate } = await services.commands.acceptReceipt(c.get('nodeId'), parseJsonBytes(c.get('rawBody')));
    return c.json({ ok: true, command_id: record.id, status: record.status, duplicate });
  });
}
