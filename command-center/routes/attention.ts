/** `GET /api/attention`: approved nodes that need attention now, worst first, with the reasons why. */
import { Hono } from 'hono';
import { z } from 'zod';
import { assessNode, statusRank, type AttentionStatus } from '../ops/attention.js';
import { requireScope } from '../auth/require-operator.js';
import type { AppEnv } from '../services.js';
import { outageView } from '../fleet/node-view.js';
import { validationError } from '../http/http-errors.js';

const querySchema = z.object({ status: z.enum(['attn', 'crit']).optional() });

export function attentionRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.get('/attention', requireScope('nodes:read'), (c) => {
    const s = c.get('services');
    const q = querySchema.safeParse(c.req.query());
    if (!q.success) throw validationError(q.error, 'query');
    const want = q.data.status;
    const nowMs = s.now().getTime();
    const counts: Record<AttentionStatus, number> = { ok: 0, attn: 0, crit: 0 };
    const items = [];
    for (const node of s.state.nodes.values()) {
      if (node.enrollment !== 'approved') continue;
      const a = assessNode(node, nowMs, s.statusPolicy);
      counts[a.status]++;
      if (a.status === 'ok' || (want && a.status !== want)) continue;
      const journaled = s.state.attention.get(node.node_id);
      items.push({
        node_id: node.node_id,
        hostname: node.hostname,
        status: a.status,
        reasons: a.reasons,
        last_seen: node.last_seen ?? null,
        // When the current status was journaled (null until the monitor has recorded it).
        since: journaled && journaled.status === a.status ? journaled.since : null,
        // Declared offline and not back yet: since when, and its last heartbeat (GET /api/nodes/:id has the same).
        outage: outageView(s.state.outages.get(node.node_id)),
      });
    }
    items.sort((a, b) => statusRank(b.status) - statusRank(a.status) || a.node_id.localeCompare(b.node_id));
    return c.json({ items, counts });
  });

  return app;
}
