/** `GET /api/orchestrator`: the scan schedules and, per approved node, next run time and last run (orchestrator.ts). */
import { Hono } from 'hono';
import { requireScope } from '../auth/require-operator.js';
import type { AppEnv } from '../services.js';

export function orchestratorRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.get('/orchestrator', requireScope('nodes:read'), (c) => {
    const o = c.get('services').orchestrator;
    if (!o) return c.json({ enabled: false, tick_secs: 0, schedule_file: null, max_per_tick: 0, schedules: {}, nodes: [] });
    const nodeId = c.req.query('node_id');
    return c.json({
      enabled: true,
      tick_secs: o.tickMs / 1000,
      schedule_file: o.scheduleFile ?? null,
      max_per_tick: o.schedule.max_per_tick,
      schedules: o.schedule.profiles,
      nodes: o.view(nodeId ? { nodeId } : {}),
    });
  });

  return app;
}
