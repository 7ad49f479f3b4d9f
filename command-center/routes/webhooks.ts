/** `GET /api/webhooks`: configured targets (without the secret) and the delivery status of the outbox. */
import { Hono } from 'hono';
import { requireScope } from '../auth/require-operator.js';
import type { AppEnv } from '../services.js';

export function webhookRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get('/webhooks', requireScope('admin'), (c) => {
    const hooks = c.get('services').webhooks;
    if (!hooks) return c.json({ enabled: false, urls: [], pending: 0, delivered: 0, failed: 0, dropped: 0, held: 0, items: [] });
    const { items, ...summary } = hooks.status();
    // Payloads can be large; the status view shows what and where, not the bytes.
    return c.json({ enabled: true, ...summary, items: items.map(({ payload: _payload, ...d }) => d) });
  });
  return app;
}
