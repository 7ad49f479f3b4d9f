/**
 * `GET /events`: envelopes as Server-Sent Events (event = kind, id = seq). Resumes from `Last-Event-ID` out of the
 * bus's ring, or sends `event: reset` when the client is too far behind to resume. The response body is a pull
 * stream, so a client that stops reading stops pulling; its bounded queue then overflows and it is dropped.
 * A stream holds a lease on its credential (stream-lease.ts), checked before each event and at least every
 * `checkMs`: when it ends, the stream sends `event: end` with the reason and closes.
 */
import { Hono } from 'hono';
import type { Envelope } from '../../protocol/envelope.js';
import { envelopeEventBytes, formatSseComment, formatSseMessage } from '../http/sse-format.js';
import { longRequest } from '../http/long-request.js';
import { announceStreamEnd } from '../http/stream-end.js';
import { requireScope } from '../auth/require-operator.js';
import { DEFAULT_STREAM_CHECK_MS, streamLease, type StreamLease } from '../http/stream-lease.js';
import type { AppEnv, Services } from '../services.js';

export const KEEPALIVE_MS = 15_000;
/** At most this many queued envelopes go out in one write. */
const MAX_COALESCED = 64;

export interface StreamRouteOptions {
  keepaliveMs?: number;
  /** How often an idle stream re-checks its credential (default: every keepalive). */
  streamCheckMs?: number;
}

export function streamRoutes(opts: StreamRouteOptions = {}): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get('/', longRequest('stream'), requireScope('events:read'), (c) => {
    const services = c.get('services');
    const lastIdHeader = c.req.header('last-event-id') ?? c.req.query('last_event_id');
    const afterSeq = lastIdHeader !== undefined && /^\d{1,15}$/.test(lastIdHeader) ? Number(lastIdHeader) : undefined;
    const kinds = c.req.query('kind')?.split(',').filter(Boolean);
    const nodeId = c.req.query('node_id');
    const filter = kinds?.length || nodeId ? (e: Envelope) => (!kinds?.length || kinds.includes(e.kind)) && (!nodeId || e.node_id === nodeId) : undefined;
    return sseResponse(services, {
      ...(afterSeq !== undefined ? { afterSeq } : {}),
      ...(filter ? { filter } : {}),
      keepaliveMs: opts.keepaliveMs ?? KEEPALIVE_MS,
      checkMs: opts.streamCheckMs ?? DEFAULT_STREAM_CHECK_MS,
      lease: streamLease(c),
      render: envelopeEventBytes,
    });
  });
  return app;
}

export function sseResponse(
  services: Services,
  opts: {
    afterSeq?: number;
    filter?: (e: Envelope) => boolean;
    keepaliveMs: number;
    /** Re-check the lease at least this often while idle (and before every event). */
    checkMs?: number;
    lease?: StreamLease;
    /** An envelope's message; bytes are sent as they are (shared between streams), a string is encoded. */
    render: (env: Envelope) => string | Uint8Array;
    prelude?: () => string;
  },
): Response {
  const { sub, resumed } = services.bus.subscribe({
    ...(opts.afterSeq !== undefined ? { afterSeq: opts.afterSeq } : {}),
    ...(opts.filter ? { filter: opts.filter } : {}),
    maxQueue: services.config.sseMaxQueue,
  });
  services.metrics.sseClients.inc();
  const encoder = new TextEncoder();
  const checkMs = opts.checkMs ?? opts.keepaliveMs;
  let lastWrite = performance.now();
  let done = false;
  let announceEnd = (): void => {};
  const finish = () => {
    if (done) return;
    done = true;
    sub.close();
    services.metrics.sseClients.dec();
    announceEnd();
  };
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      let head = formatSseMessage({ event: 'hello', data: JSON.stringify({ seq: services.state.lastSeq }), retry: 2000 });
      if (opts.afterSeq !== undefined && !resumed) {
        head += formatSseMessage({ event: 'reset', id: services.state.lastSeq, data: JSON.stringify({ reason: 'too_far_behind', seq: services.state.lastSeq }) });
      }
      if (opts.prelude) head += opts.prelude();
      controller.enqueue(encoder.encode(head));
    },
    async pull(controller) {
      for (;;) {
        const ended = opts.lease?.();
        if (ended) {
          controller.enqueue(encoder.encode(formatSseMessage({ event: 'end', data: JSON.stringify({ reason: ended }) })));
          finish();
          controller.close();
          return;
        }
        const sinceWrite = performance.now() - lastWrite;
        const next = await sub.next(Math.max(1, Math.min(opts.keepaliveMs - sinceWrite, checkMs)));
        if (next === undefined) {
          finish();
          controller.close();
          return;
        }
        if (next === 'idle') {
          if (performance.now() - lastWrite < opts.keepaliveMs) continue; // a lease check, not yet a keepalive
          if (opts.lease?.()) continue; // end, rather than keep alive
          lastWrite = performance.now();
          controller.enqueue(encoder.encode(formatSseComment('keepalive')));
          return;
        }
        if (opts.lease?.()) continue; // nothing more for a credential that ended while waiting
        lastWrite = performance.now();
        // What queued up behind it (a burst, a slow reader) goes out in the same write.
        const more = sub.takeQueued(MAX_COALESCED - 1);
        const first = opts.render(next);
        if (!more.length) {
          controller.enqueue(typeof first === 'string' ? encoder.encode(first) : first);
          return;
        }
        const parts = [first, ...more.map(opts.render)].map((p) => (typeof p === 'string' ? encoder.encode(p) : p));
        controller.enqueue(Buffer.concat(parts));
        return;
      }
    },
    cancel() {
      finish();
    },
  }, { highWaterMark: 0 });
  // The SSE cap learns of the end from here rather than by wrapping the body in another stream.
  announceEnd = announceStreamEnd(body);
  return new Response(body, {
    headers: {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    },
  });
}
