/**
 * Operator and bot identities. An authenticator looks at a request and returns who it is, or nothing; the first
 * one that recognises the request wins. Today: the admin Bearer token. Scoped tokens, console sessions and the
 * Cloudflare Access JWT plug in as further authenticators without touching the routes.
 */
import type { Context } from 'hono';
import { secretMatches } from './secrets.js';

export type Scope = 'admin' | 'events:read' | 'events:write' | 'nodes:read' | 'nodes:approve' | 'commands:write' | 'metrics:read';

export interface Identity {
  /** How the caller proved itself. */
  via: 'admin-token' | 'api-token' | 'session' | 'cf-access';
  /** Recorded as `author` of everything the caller does. */
  name: string;
  scopes: ReadonlySet<Scope>;
  /**
   * For credentials that can be revoked or expire while something derived from them lives on (a console session
   * started with an API token): false once the credential is no longer valid.
   */
  stillValid?: () => boolean;
}

export type Authenticator = (c: Context) => Identity | undefined | Promise<Identity | undefined>;

export function bearerToken(c: Context): string | undefined {
  const h = c.req.header('authorization');
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

export function adminTokenAuthenticator(adminTokenHash: string): Authenticator {
  const identity: Identity = { via: 'admin-token', name: 'admin', scopes: new Set<Scope>(['admin']) };
  return (c) => {
    const token = bearerToken(c);
    return token && secretMatches(token, adminTokenHash) ? identity : undefined;
  };
}

export function hasScope(identity: Identity, scope: Scope): boolean {
  return identity.scopes.has('admin') || identity.scopes.has(scope);
}
