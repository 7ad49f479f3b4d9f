/**
 * Limits of the HTTP server itself, below the routes: how long a client may take to send its request, how many
 * connections it may hold, and what happens to a connection whose request was refused before its body arrived.
 *
 * - `headersTimeout`: the request headers must arrive within this long (slow-header clients, "slowloris").
 * - `requestTimeout`: the whole request, headers and body, must arrive within this long. Node applies it only while
 *   the request is being received, so a stream or a long-poll, whose request arrived at once, is not cut off.
 * - `connectionsCheckingInterval`: Node enforces both timeouts on a sweep, every 30 s by default, which let a
 *   10 s timeout hold a socket for 40 s; the sweep runs at least every second here.
 * - `keepAliveTimeout`: an idle keep-alive connection is closed after this long.
 * - `maxConnections`: beyond it, new connections are closed at once (Node's own check).
 * - Per client address: connections are counted on 'connection', and one over the cap is destroyed. Loopback peers
 *   are exempt (behind cloudflared every connection comes from 127.0.0.1: a cap would cap the whole fleet).
 * - Early answers: when a response finishes while its request body is still arriving (a 401 before the body was
 *   read, a 413), Node would keep reading and discarding the body to reuse the connection, for as long as the client
 *   drips it. Instead the response says `Connection: close`, the rest of the body is discarded, the socket is ended,
 *   and destroyed after a short grace (destroying at once with unread input makes the kernel send a reset, which can
 *   throw away the answer before the client reads it).
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { CenterConfig } from '../config.js';
import { LOOPBACK } from './rate-limit.js';

export interface ServerLimits {
  headersTimeoutMs: number;
  requestReceiveTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
  /** 0 = no per-address cap. */
  maxConnectionsPerIp: number;
  /** Addresses the per-address cap spares (default: loopback). */
  exempt?: (address: string) => boolean;
  /** How long an early-answered connection may take to close by itself before it is destroyed. */
  earlyCloseGraceMs?: number;
}

export function serverLimitsFromConfig(config: CenterConfig): ServerLimits {
  return {
    headersTimeoutMs: config.headersTimeoutSecs * 1000,
    requestReceiveTimeoutMs: config.requestReceiveTimeoutSecs * 1000,
    keepAliveTimeoutMs: config.keepAliveTimeoutSecs * 1000,
    maxConnections: config.maxConnections,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
  };
}

/** An `http.createServer` with the limits, in the shape @hono/node-server's `createServer` option takes. */
export function limitedServerFactory(limits: ServerLimits): typeof createServer {
  return ((_options: unknown, listener?: RequestListener) => createLimitedServer(limits, listener)) as unknown as typeof createServer;
}

export function createLimitedServer(limits: ServerLimits, listener?: RequestListener): Server {
  const grace = limits.earlyCloseGraceMs ?? 1000;
  const server = createServer(
    {
      // Node refuses a headers timeout longer than the request timeout.
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: Math.max(limits.requestReceiveTimeoutMs, limits.headersTimeoutMs),
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(limits.headersTimeoutMs / 2))),
    },
    (req, res) => {
      closeIfBodyPending(req, res, grace);
      listener?.(req, res);
    },
  );
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxConnections = limits.maxConnections;
  if (limits.maxConnectionsPerIp > 0) capPerAddress(server, limits.maxConnectionsPerIp, limits.exempt ?? ((a) => LOOPBACK.test(a)));
  return server;
}

function closeIfBodyPending(req: IncomingMessage, res: ServerResponse, graceMs: number): void {
  // Only a request that carries a body can still be arriving. `complete` is not yet true for a bodiless request
  // answered within the tick it arrived in (the parser finishes the message after the handler's microtasks ran), so
  // it is not asked for those. A body-carrying request answered without reading its body is told to close even if
  // its body had in fact arrived whole: rare (it was refused), and a reconnect costs the client little.
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
  if (!hasBody) return;
  const writeHead = res.writeHead;
  res.writeHead = function (this: ServerResponse, ...args: Parameters<ServerResponse['writeHead']>) {
    if (!req.complete) this.setHeader('connection', 'close');
    return writeHead.apply(this, args);
  } as ServerResponse['writeHead'];
  res.once('finish', () => {
    if (req.complete) return;
    const socket = req.socket;
    req.resume(); // discard the rest instead of letting it fill buffers
    socket.end();
    const t = setTimeout(() => socket.destroy(), graceMs);
    t.unref();
    socket.once('close', () => clearTimeout(t));
  });
}

function capPerAddress(server: Server, cap: number, exempt: (address: string) => boolean): void {
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    if (exempt(address)) return;
    const n = (open.get(address) ?? 0) + 1;
    if (n > cap) {
      socket.destroy();
      return;
    }
    open.set(address, n);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
  });
}
