/** Operator API: nodes, enrollment decisions, join tokens. */
import { Hono } from 'hono';
import { z } from 'zod';
import { randomBytes } from 'node:crypto';
import { nodeIdSchema } from '../../protocol/envelope.js';
import { VaultMeshError } from '../../protocol/errors.js';
import { decideNodeEnrollment, ENROLLMENT_ACTIONS } from '../fleet/enrollment-actions.js';
import { readJson, validationError } from '../http/http-errors.js';
import { nodeDetail, nodeSummary } from '../fleet/node-view.js';
import { requireScope } from '../auth/require-operator.js';
import { hashSecret, newSecret } from '../auth/secrets.js';
import type { AppEnv } from '../services.js';

const joinTokenRequestSchema = z
  .object({
    ttl_secs: z.number().int().min(60).max(30 * 86_400).default(3600),
    uses: z.number().int().min(1).max(10_000).default(1),
    label: z.string().max(128).default(''),
  })
  .strict();

const nodeIdParam = (raw: string) => {
  const r = nodeIdSchema.safeParse(raw);
  if (!r.success) throw validationError(r.error, 'node id');
  return r.data;
};

export function operatorRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.get('/nodes', requireScope('nodes:read'), (c) => {
    const s = c.get('services');
    const now = s.now().getTime();
    const nodes = [...s.state.nodes.values()].sort((a, b) => a.node_id.localeCompare(b.node_id)).map((n) => nodeSummary(n, now, s.statusPolicy));
    return c.json(nodes);
  });

  app.get('/nodes/:id', requireScope('nodes:read'), (c) => {
    const s = c.get('services');
    const node = s.state.nodes.get(nodeIdParam(c.req.param('id')));
    if (!node) throw new VaultMeshError('NOT_FOUND', 'no such node', { status: 404 });
    return c.json(nodeDetail(node, s.now().getTime(), s.statusPolicy, s.state.outages.get(node.node_id)));
  });

  for (const action of ENROLLMENT_ACTIONS) {
    app.post(`/nodes/:id/${action}`, requireScope('nodes:approve'), async (c) => {
      const result = await decideNodeEnrollment(c.get('services'), { nodeId: nodeIdParam(c.req.param('id')), action, author: c.get('identity').name });
      return c.json(result);
    });
  }

  app.post('/join-tokens', requireScope('nodes:approve'), async (c) => {
    const s = c.get('services');
    const parsed = joinTokenRequestSchema.safeParse(await readJson(c));
    if (!parsed.success) throw validationError(parsed.error);
    const token = newSecret('vmjoin');
    const tokenId = randomBytes(6).toString('hex');
    const expiresAt = new Date(s.now().getTime() + parsed.data.ttl_secs * 1000).toISOString();
    await s.submit({
      kind: 'join_token',
      author: c.get('identity').name,
      body: { action: 'create', token_id: tokenId, token_sha256: hashSecret(token), expires_at: expiresAt, uses: parsed.data.uses, label: parsed.data.label },
    });
    // The token itself is shown once, here; the journal keeps only its hash.
    return c.json({ token, token_id: tokenId, expires_at: expiresAt, uses: parsed.data.uses }, 201);
  });

  app.get('/join-tokens', requireScope('nodes:approve'), (c) => {
    const s = c.get('services');
    const now = s.now().getTime();
    return c.json(
      [...s.state.joinTokens.values()].map((t) => ({
        token_id: t.token_id,
        label: t.label,
        created_at: t.created_at,
        created_by: t.created_by,
        expires_at: t.expires_at,
        uses: t.uses,
        used: t.used,
        state: t.revoked ? 'revoked' : Date.parse(t.expires_at) <= now ? 'expired' : t.used >= t.uses ? 'used_up' : 'active',
      })),
    );
  });

  app.delete('/join-tokens/:id', requireScope('nodes:approve'), async (c) => {
    const s = c.get('services');
    const id = c.req.param('id');
    const t = s.state.joinTokens.get(id);
    if (!t) throw new VaultMeshError('NOT_FOUND', 'no such join token', { status: 404 });
    if (!t.revoked) await s.submit({ kind: 'join_token', author: c.get('identity').name, body: { action: 'revoke', token_id: id } });
    return c.json({ token_id: id, revoked: true });
  });

  return app;
}
