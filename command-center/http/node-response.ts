/**
 * The Node `ServerResponse` under a Hono request, when it runs on @hono/node-server (`c.env.outgoing`); nothing under
 * `app.request()` or another adapter. For the one route that writes to it directly (the SSE stream).
 */
import { ServerResponse } from 'node:http';
import type { Context } from 'hono';

export function nodeResponse(c: Context): { outgoing?: ServerResponse } {
  const outgoing = (c.env as { outgoing?: unknown } | undefined)?.outgoing;
  return outgoing instanceof ServerResponse ? { outgoing } : {};
}
