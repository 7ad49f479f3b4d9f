/**
 * The admin socket listener: the center's HTTP app served a second time, on the Unix socket `admin.sock` in the
 * state dir (0600 inside the 0700 state dir), for the CLI on the center's own host. Requests accepted here carry
 * the local admin mark (auth/local-admin.ts), so they need no token and pass a configured Cloudflare Access gate,
 * which otherwise refuses a CLI that is not behind Access. The socket is removed on a clean shutdown; one left by a
 * crash (nothing answers on it) is replaced at start.
 */
import { createAdaptorServer, type ServerType } from '@hono/node-server';
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../lib/logger.js';
import { markLocalAdmin } from './auth/local-admin.js';

export const ADMIN_SOCKET_FILE = 'admin.sock';

/** sun_path holds 108 bytes with the terminating NUL on Linux (104 on the BSDs); longer paths cannot be bound. */
const MAX_SOCKET_PATH_BYTES = 103;

export function adminSocketPath(stateDir: string): string {
  return join(stateDir, ADMIN_SOCKET_FILE);
}

export type FetchHandler = (request: Request, bindings: object) => Response | Promise<Response>;

export interface AdminSocket {
  readonly path: string;
  /** Stops accepting, lets in-flight requests finish (at most `forceAfterMs`), removes the socket file. */
  close(): Promise<void>;
}

export interface AdminSocketOptions {
  path: string;
  fetch: FetchHandler;
  log: Logger;
  forceAfterMs?: number;
}

/**
 * Listens on `path`; resolves to undefined (with a warning) when the socket cannot be offered: the path is too long,
 * something that is not a socket sits there, another process still answers on it, or listening fails. The center
 * runs on without it: the TCP listener and its credentials still work.
 */
export async function listenAdminSocket(opts: AdminSocketOptions): Promise<AdminSocket | undefined> {
  const { path, log } = opts;
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    log.warn(`admin socket not started: ${path} is longer than a Unix socket path may be (${MAX_SOCKET_PATH_BYTES} bytes); use a shorter --state-dir`);
    return undefined;
  }
  const existing = lstatOrUndefined(path);
  if (existing && !existing.isSocket()) {
    log.warn(`admin socket not started: ${path} exists and is not a socket`);
    return undefined;
  }
  if (existing) {
    if (await answers(path)) {
      log.warn(`admin socket not started: another process answers on ${path}`);
      return undefined;
    }
    unlinkSync(path); // left by a center that did not shut down cleanly
  }

  const server: ServerType = createAdaptorServer({ fetch: (request: Request, bindings: object) => opts.fetch(request, markLocalAdmin(bindings)) });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    log.warn(`admin socket not started: cannot listen on ${path}: ${(err as Error).message}`);
    return undefined;
  }
  // The 0700 state dir already keeps other users out; the mode says the same on the socket itself.
  chmodSync(path, 0o600);

  let closing: Promise<void> | undefined;
  return {
    path,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((res) => server.close(() => res()));
        const idle = () => (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
        idle();
        const sweepIdle = setInterval(idle, 20);
        const force = setTimeout(() => (server as { closeAllConnections?: () => void }).closeAllConnections?.(), opts.forceAfterMs ?? 3000);
        await closed;
        clearInterval(sweepIdle);
        clearTimeout(force);
        try {
          unlinkSync(path);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn(`could not remove ${path}: ${(err as Error).message}`);
        }
      })();
      return closing;
    },
  };
}

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** True when a process accepts connections on the socket (a live center), false for a stale one. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(path);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}
