/**
 * The local admin: who a request is when it arrived on the center's admin socket (admin-socket.ts). Reaching that
 * Unix socket takes the file permissions of the center's own user (0600 inside the 0700 state dir), so the kernel has
 * already authenticated the caller; no token is needed and the Cloudflare Access gate does not apply.
 *
 * The mark is a request binding set by the socket listener alone, under a symbol only this module hands out:
 * nothing a client sends (headers, URL, body) can produce it, so a TCP request can never be the local admin.
 */
import type { Identity } from './operator-auth.js';

const LOCAL_ADMIN_CONNECTION: unique symbol = Symbol('vaultmesh.local-admin-connection');

/** The author of everything done over the admin socket. */
export const LOCAL_ADMIN_NAME = 'local-admin';

const LOCAL_ADMIN: Identity = Object.freeze({ via: 'admin-socket', name: LOCAL_ADMIN_NAME, scopes: new Set(['admin'] as const) });

/** The bindings of a request accepted on the admin socket: the server's own, plus the mark. */
export function markLocalAdmin<B extends object>(bindings: B | undefined): B & { [LOCAL_ADMIN_CONNECTION]: true } {
  return Object.assign({}, bindings, { [LOCAL_ADMIN_CONNECTION]: true as const }) as B & { [LOCAL_ADMIN_CONNECTION]: true };
}

/** The local admin identity when the request's bindings carry the mark; undefined for every other request. */
export function localAdminOf(bindings: unknown): Identity | undefined {
  return typeof bindings === 'object' && bindings !== null && (bindings as { [LOCAL_ADMIN_CONNECTION]?: unknown })[LOCAL_ADMIN_CONNECTION] === true ? LOCAL_ADMIN : undefined;
}
