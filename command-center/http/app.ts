/**
 * The Hono application, built from its services so tests can call `app.request()` in-process.
 * Only `/healthz` (and, with the console, its login page; with `--ledger-public`, ledger checkpoints and hash tiles)
 * answer without an identity. Order is the trust
 * boundary: `/healthz` and the node-signed agent API are registered before `identify`, so they answer before any
 * operator credential (or the Cloudflare Access gate) is looked at; everything registered after it sees the
 * request's identity, resolved once.
 */
import { IncomingMessage } from 'node:http';
import { Hono, type Context } from 'hono';
import { routePath } from 'hono/route';
import { VaultMeshError } from '../../protocol/errors.js';
import { renderError } from './http-errors.js';
import { nodeResponse } from './node-response.js';
import { identify, requireOperator, requireScope } from '../auth/require-operator.js';
import { agentRoutes } from '../routes/agent.js';
import { operatorRoutes } from '../routes/operator.js';
import { ledgerRoutes } from '../routes/ledger.js';
import { commandRoutes } from '../routes/commands.js';
import { streamRoutes } from '../routes/stream.js';
import { consoleRoutes } from '../routes/console.js';
import { eventRoutes } from '../routes/events.js';
import { attentionRoutes } from '../routes/attention.js';
import { tokenRoutes } from '../routes/tokens.js';
import { keyRoutes } from '../routes/keys.js';
import { webhookRoutes } from '../routes/webhooks.js';
import { orchestratorRoutes } from '../routes/orchestrator.js';
import { maintenanceRoutes } from '../routes/maintenance.js';
import { entryRoutes, tlogApiRoutes, treeRoutes } from '../routes/tlog.js';
import { nodeStatus } from '../fleet/node-status.js';
import { NODE_STATUSES, type NodeStatus } from '../../protocol/node-statuses.js';
import type { AppEnv, Services } from '../services.js';
import { VERSION } from '../../lib/version.js';

/** Replaces a chunked request body with one that errors (413) once more than `maxBody` bytes have been read. */
function countBody(c: Context<AppEnv>, maxBody: number, tooLarge: () => VaultMeshError): void {
  const raw = c.req.raw;
  if (!raw.body) return;
  let size = 0;
  const counted = raw.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        size += chunk.byteLength;
        if (size > maxBody) controller.error(tooLarge());
        else controller.enqueue(chunk);
      },
    }),
  );
  c.req.raw = new Request(raw, { body: counted, duplex: 'half' } as RequestInit);
}

export function createApp(services: Services, opts: { keepaliveMs?: number; streamCheckMs?: number } = {}): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.use('*', async function countRequests(c, next) {
    c.set('services', services);
    try {
      await next();
    } finally {
      services.metrics.countHttpRequest(routePath(c) || 'unmatched', c.req.method, c.res.status);
    }
  });
  const maxBody = services.config.maxBodyBytes;
  const tooLarge = () => new VaultMeshError('PAYLOAD_TOO_LARGE', `request body exceeds ${maxBody} bytes`, { status: 413 });
  app.use('*', async function limitBody(c, next) {
    // With a Content-Length (Node's parser holds the body to it) the check is one comparison. A chunked body is
    // counted as the route reads it, not read up front (hono's bodyLimit buffers it all before the route runs): a
    // request refused before its body is read (401, 403) is answered at once, and the server then closes a
    // connection whose body is still dripping in (server-limits.ts) instead of waiting for it.
    const length = c.req.header('content-length');
    if (length === undefined) {
      // On node:http a request with neither Content-Length nor Transfer-Encoding has no body (RFC 9112 §6.3), and
      // asking the adapter's lazy request for one would build a whole web Request (headers, AbortSignal, stream)
      // for every GET: that was three quarters of the CPU of a GET /healthz.
      const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
      if (!(incoming instanceof IncomingMessage) || incoming.headers['transfer-encoding'] !== undefined) countBody(c, maxBody, tooLarge);
      return next();
    }
    if (!/^\d{1,15}$/.test(length)) throw new VaultMeshError('BAD_REQUEST', 'invalid Content-Length', { status: 400 });
    if (Number(length) > maxBody) throw tooLarge();
    return next();
  });
  app.use('*', async function securityHeaders(c, next) {
    const { outgoing } = nodeResponse(c);
    if (outgoing) {
      // On node:http they go onto the ServerResponse before the route runs (writeHead merges them in), instead of
      // turning every answer's plain header record into a Headers object afterwards; streams written straight to
      // the socket get them too.
      outgoing.setHeader('x-content-type-options', 'nosniff');
      outgoing.setHeader('referrer-policy', 'no-referrer');
      outgoing.setHeader('x-frame-options', 'DENY');
      return next();
    }
    await next();
    const h = c.res.headers;
    h.set('x-content-type-options', 'nosniff');
    h.set('referrer-policy', 'no-referrer');
    h.set('x-frame-options', 'DENY');
  });
  // Abuse limits (rate-limit.ts): timeout, per-IP/per-node buckets.
  app.use('*', services.limits.requestTimeout(), services.limits.clientLimit());

  // Role and lag are for load balancers and probes (send writes anywhere, alert on a trailing replica); nothing in
  // them names the database, the peers or a secret.
  app.get('/healthz', async (c) =>
    c.json({
      status: 'ok',
      version: VERSION,
      uptime_s: Math.round((services.now().getTime() - services.startedAt.getTime()) / 1000),
      seq: services.state.lastSeq,
      role: services.leadership.role,
      tail_lag: await services.tailLag.get(),
    }),
  );

  app.route('/api/agent', agentRoutes());
  // With --ledger-public, checkpoints and hash tiles (hashes only, no content) answer before any credential is read.
  if (services.config.ledgerPublic) app.route('/ledger', treeRoutes());

  // Operators and bots from here on: one identity per request (with the Access gate), then its bucket.
  app.use('*', identify());
  if (services.limits) app.use('*', services.limits.identityLimit());

  app.use('/api/*', requireOperator());
  app.route('/api', tokenRoutes());
  app.route('/api', keyRoutes());
  app.route('/api', operatorRoutes());
  app.route('/api', ledgerRoutes());
  app.route('/api', commandRoutes());
  app.route('/api', eventRoutes());
  app.route('/api', attentionRoutes());
  app.route('/api', webhookRoutes());
  app.route('/api', orchestratorRoutes());
  app.route('/api', maintenanceRoutes());
  app.route('/api', tlogApiRoutes());

  app.use('/ledger/*', requireOperator());
  app.route('/ledger', entryRoutes());
  if (!services.config.ledgerPublic) {
    app.use('/ledger/*', requireScope('ledger:read'));
    app.route('/ledger', treeRoutes());
  }

  app.use('/events', requireOperator());
  app.route('/events', streamRoutes(opts));

  app.route('/console', consoleRoutes(opts));

  app.get('/metrics', requireOperator(), requireScope('metrics:read'), async (c) => {
    const m = services.metrics;
    // Every status, zeros included: an alert on `vaultmesh_nodes{status="crit"} > 0` needs the series to exist.
    const counts = Object.fromEntries(NODE_STATUSES.map((s) => [s, 0])) as Record<NodeStatus, number>;
    const now = services.now().getTime();
    for (const n of services.state.nodes.values()) counts[nodeStatus(n, now, services.statusPolicy)]++;
    for (const [status, v] of Object.entries(counts)) m.nodesByStatus.set({ status }, v);
    m.journalSeq.set(services.state.lastSeq);
    return c.text(await m.registry.metrics(), 200, { 'content-type': m.registry.contentType });
  });

  app.notFound((c) => c.json(new VaultMeshError('NOT_FOUND', `no route for ${c.req.method} ${new URL(c.req.url).pathname}`).toJSON(), 404));
  app.onError((err, c) => renderError(err, c));
  return app;
}
