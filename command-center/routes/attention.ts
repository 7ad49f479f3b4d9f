/** `GET /api/attention`: approved nodes that need attention now, worst first, with the reasons why. */
import { Hono } from 'hono';
import { VaultMeshError } from '../../protocol/errors.js';
import { assessNode, statusRank, type AttentionStatus } from '../ops/attention.js';
import { requireScope } from '../auth/require-operator.js';
import type { AppEnv } from '../services.js';

export function attentionRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.get('/attention', requireScope('nodes:read'), (c) => {
    const s = c.get('services');
    const want = c.req.query('status');
    if (want !== undefined && want !== 'attn' && want !== 'crit') {
      throw new VaultMeshError('VALIDATION_ERROR', 'status must be attn or crit', { status: 400, details: [{ path: 'status', message: 'must be attn or crit' }] });
    }
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
      });
    }
    items.sort((a, b) => statusRank(b.status) - statusRank(a.status) || a.node_id.localeCompare(b.node_id));
    return c.json({ items, counts });
  });

  return app;
}
