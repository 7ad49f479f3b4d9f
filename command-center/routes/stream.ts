/**
 * `GET /events`: envelopes as Server-Sent Events (event = kind, id = seq). Resumes from `Last-Event-ID` out of the
 * bus's ring, or sends `event: reset` when the client is too far behind to resume. The response body is a pull
 * stream, so a client that stops reading stops pulling; its bounded queue then overflows and it is dropped.
 * A stream holds a lease on its credential (stream-lease.ts), checked before each event and at least every
 * `checkMs`: when it ends, the stream sends `event: end` with the reason and closes.
 */
import type { ServerResponse } from 'node:http';
import { Hono } from 'hono';
import type { Envelope } from '../../protocol/envelope.js';
import { envelopeEventBytes, formatSseComment, formatSseMessage } from '../http/sse-format.js';
import { longRequest } from '../http/long-request.js';
import { nodeResponse } from '../http/node-response.js';
import { announceStreamEnd } from '../http/stream-end.js';
import { createTurnBatch, type TurnBatch } from '../http/turn-batch.js';
import { requireScope } from '../auth/require-operator.js';
import { DEFAULT_STREAM_CHECK_MS, streamLease, type StreamLease } from '../http/stream-lease.js';
import type { AppEnv, Services } from '../services.js';

export const KEEPALIVE_MS = 15_000;
/** At most this many queued envelopes go out in one write. */
const MAX_COALESCED = 64;
/**
 * Every stream's flush after a commit runs in one batch after the commit's turn (turn-batch.ts): the POSTs that made
 * the commit are answered first, and the fan-out's writes then go out back to back.
 */
const defaultFlushes = createTurnBatch();

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
      ...nodeResponse(c),
    });
  });
  return app;
}

/**
 * Whether the response's body is chunked (true) or raw bytes (false), once the head has reached its socket and
 * nothing of the response waits in front of it; undefined when res.write must do the writing. `chunkedEncoding`
 * and `outputData` are Node's own fields on OutgoingMessage (stable since Node 0.x, not in its typings).
 */
function chunkedBody(res: ServerResponse): boolean | undefined {
  const r = res as ServerResponse & { chunkedEncoding?: boolean; outputData?: unknown[]; _headerSent?: boolean };
  if (!r._headerSent || r.writableEnded || (r.outputData?.length ?? 1) !== 0 || typeof r.chunkedEncoding !== 'boolean') return undefined;
  return r.chunkedEncoding;
}

const CRLF = Buffer.from('\r\n');
// Framed once per message, like the message's bytes (envelopeEventBytes): weak, so it lives as long as they do.
const framed = new WeakMap<Uint8Array, Buffer>();

/** One HTTP/1.1 chunk holding `bytes` (RFC 9112 §7.1): size in hex, CRLF, the bytes, CRLF. */
export function chunkedFrame(bytes: Uint8Array): Buffer {
  let frame = framed.get(bytes);
  if (!frame) {
    frame = Buffer.concat([Buffer.from(`${bytes.byteLength.toString(16)}\r\n`, 'latin1'), bytes, CRLF]);
    framed.set(bytes, frame);
  }
  return frame;
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
    /**
     * The Node response under this request, when there is one (not under `app.request()`): once the headers and
     * the first messages have gone out through the body stream, envelopes are written to it directly.
     */
    outgoing?: ServerResponse;
    /** Where the direct writer's flushes are batched (default: one batch per turn, after it). */
    flushes?: TurnBatch;
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
  const out = opts.outgoing;
  let lastWrite = performance.now();
  let done = false;
  let timer: NodeJS.Timeout | undefined;
  let announceEnd = (): void => {};
  const finish = () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    sub.close();
    services.metrics.sseClients.dec();
    announceEnd();
  };
  const endMessage = (reason: string) => encoder.encode(formatSseMessage({ event: 'end', data: JSON.stringify({ reason }) }));
  /** One write's worth of envelopes (the first, and what queued up behind it: a burst, a slow reader). */
  const renderOne = (env: Envelope): Uint8Array | undefined => {
    const r = opts.render(env);
    const bytes = typeof r === 'string' ? encoder.encode(r) : r;
    return bytes.byteLength ? bytes : undefined;
  };
  const renderBatch = (batch: Envelope[]): Uint8Array | undefined => {
    if (batch.length === 1) return renderOne(batch[0]!);
    const parts: Uint8Array[] = [];
    for (const env of batch) {
      const r = opts.render(env);
      const bytes = typeof r === 'string' ? encoder.encode(r) : r;
      if (bytes.byteLength) parts.push(bytes);
    }
    if (parts.length <= 1) return parts[0];
    return Buffer.concat(parts);
  };

  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const close = () => {
    try {
      controller.close();
    } catch {
      // already closed or cancelled: the client went first
    }
  };
  const flushes = opts.flushes ?? defaultFlushes;
  const direct = out ? directWriter(out) : undefined;

  /**
   * Writes straight to the Node response, past the body stream. Through Web Streams every envelope cost each client
   * a promise chain (the bus waking a pull, the pull enqueueing, the server's reader resolving, its write), ≈ a fifth
   * of the fan-out's CPU at 1,000 clients (docs/BENCHMARKS.md). Here `publish` queues the envelope and schedules the
   * client's flush in the turn's batch (`flushes`, after the commit's own answers), so what one turn published goes
   * out in one write per client. The body stream stays open, the server holding a pending read on it, and is closed
   * to end the response: the middleware that watch it (the SSE cap's slot, headers, metrics) see the same response.
   *
   * Order: the server writes the headers and the first message (`hello`) together. Until then, and until it has
   * taken and written anything else handed to the stream (it asks for more — `pull` — only after writing), bytes
   * go through the stream, one chunk at a time; after that, to the response.
   */
  function directWriter(res: ServerResponse) {
    let viaStream = true;
    let handedToStream = 0; // chunks after the head given to the body stream
    let streamWants = false; // the server has a read pending on an empty stream
    let blocked = false;
    let scheduled = false;
    // How bytes reach the socket once the head is there (chunkedBody): decided once, since from then on only this
    // writer writes to the socket until the end (which goes through the response).
    let chunked: boolean | undefined;
    const writable = (): boolean => {
      if (viaStream && res.headersSent && handedToStream === 0) viaStream = false;
      return viaStream ? streamWants : !blocked;
    };
    const write = (bytes: Uint8Array) => {
      lastWrite = performance.now();
      if (viaStream) {
        streamWants = false;
        handedToStream++;
        controller.enqueue(bytes);
        return;
      }
      // Past the head the response is only a framing around the socket: a chunked body's chunk, framed once per
      // message for every client (chunkedFrame), goes to the socket as one buffer. res.write did that framing per
      // client in four writes (size, CRLF, data, CRLF), corked the socket and uncorked it on the next tick.
      const socket = res.socket;
      if (chunked === undefined && socket) chunked = chunkedBody(res);
      const raw = socket !== null && chunked !== undefined;
      // (A zero-length chunk would end the body; no message is empty.)
      const ok = raw ? socket.write(chunked ? chunkedFrame(bytes) : bytes) : res.write(bytes);
      if (!ok) {
        // The socket's buffer is full: envelopes wait in the subscription's bounded queue, which drops this client
        // when it overflows, until the kernel takes more.
        blocked = true;
        (raw ? socket : res).once('drain', onDrain);
      }
    };
    const end = (reason?: string) => {
      if (reason && !res.destroyed) {
        if (viaStream) controller.enqueue(endMessage(reason));
        else res.write(endMessage(reason));
      }
      finish();
      close();
    };
    const flush = () => {
      scheduled = false;
      if (done) return;
      if (res.destroyed) return end();
      for (;;) {
        if (sub.closed) return end(); // overflow or shutdown (the bus drops its queue)
        // (An idle stream's lease is the timer's to check; an event's, here, before it goes out.)
        if (!sub.queued || !writable()) return;
        const ended = opts.lease?.();
        if (ended) return end(ended);
        const bytes = sub.queued === 1 ? renderOne(sub.takeOne()!) : renderBatch(sub.takeQueued(MAX_COALESCED));
        if (bytes) write(bytes);
      }
    };
    const schedule = () => {
      if (scheduled || done) return;
      scheduled = true;
      flushes.schedule(flush);
    };
    const onDrain = () => {
      blocked = false;
      schedule();
    };
    // Re-checks the lease at least every `checkMs` and keeps an idle stream alive; one timer per stream, re-armed
    // when it fires rather than on every write.
    const tick = () => {
      if (done) return;
      const ended = opts.lease?.();
      if (ended) return end(ended);
      if (performance.now() - lastWrite >= opts.keepaliveMs && writable()) write(encoder.encode(formatSseComment('keepalive')));
      arm();
    };
    const arm = () => {
      timer = setTimeout(tick, Math.max(1, Math.min(opts.keepaliveMs - (performance.now() - lastWrite), checkMs)));
    };
    arm();
    sub.listen(schedule);
    return {
      pulled() {
        streamWants = true;
        if (res.headersSent) viaStream = false;
        schedule();
      },
    };
  }

  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      let head = formatSseMessage({ event: 'hello', data: JSON.stringify({ seq: services.state.lastSeq }), retry: 2000 });
      if (opts.afterSeq !== undefined && !resumed) {
        head += formatSseMessage({ event: 'reset', id: services.state.lastSeq, data: JSON.stringify({ reason: 'too_far_behind', seq: services.state.lastSeq }) });
      }
      c.enqueue(encoder.encode(head));
    },
    async pull(c) {
      if (direct) return direct.pulled();
      for (;;) {
        const ended = opts.lease?.();
        if (ended) {
          c.enqueue(endMessage(ended));
          finish();
          c.close();
          return;
        }
        const sinceWrite = performance.now() - lastWrite;
        const next = await sub.next(Math.max(1, Math.min(opts.keepaliveMs - sinceWrite, checkMs)));
        if (next === undefined) {
          finish();
          c.close();
          return;
        }
        if (next === 'idle') {
          if (performance.now() - lastWrite < opts.keepaliveMs) continue; // a lease check, not yet a keepalive
          if (opts.lease?.()) continue; // end, rather than keep alive
          lastWrite = performance.now();
          c.enqueue(encoder.encode(formatSseComment('keepalive')));
          return;
        }
        if (opts.lease?.()) continue; // nothing more for a credential that ended while waiting
        lastWrite = performance.now();
        const bytes = renderBatch([next, ...sub.takeQueued(MAX_COALESCED - 1)]);
        if (!bytes) continue;
        c.enqueue(bytes);
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
