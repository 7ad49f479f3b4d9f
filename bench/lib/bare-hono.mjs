#!/usr/bin/env node
/**
 * The ingest baseline: a bare Hono app on @hono/node-server whose heartbeat route only parses the JSON body and
 * answers. Same framework, same body, same load generator as the real center; no auth, no journal, no fsync.
 * Its GET /healthz answers the center's health document with fixed values: the baseline of a body-less request.
 *   node bench/lib/bare-hono.mjs [port]   → prints "listening on http://127.0.0.1:<port>"
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

const app = new Hono();
app.post('/api/agent/heartbeat', async (c) => {
  const raw = Buffer.from(await c.req.arrayBuffer());
  const body = JSON.parse(raw.toString('utf8'));
  return c.json({ ok: true, id: body.id ?? null, seq: 0, duplicate: false, server_time: new Date().toISOString() });
});
app.get('/healthz', (c) => c.json({ status: 'ok', version: '0.0.0', uptime_s: 1, seq: 0, role: 'leader', tail_lag: null }));
serve({ fetch: app.fetch, hostname: '127.0.0.1', port: Number(process.argv[2] ?? 0) }, (info) => {
  console.log(`bare hono listening on http://127.0.0.1:${info.port}`);
});
process.on('SIGTERM', () => process.exit(0));
