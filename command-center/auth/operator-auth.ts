/**
 * Operator and bot identities. An authenticator takes one credential (a Bearer token, a Cloudflare Access assertion,
 * a console session cookie value) and says who it is, or nothing. The request-level choice between the credentials
 * a request carries is made once, by the `identify` middleware (require-operator.ts).
 */
import { secretMatches } from './secrets.js';
import type { CfAccess } from './cf-access.js';
import type { SessionStore } from '../console/session.js';

export type { Scope } from '../../protocol/scopes.js';
import type { Scope } from '../../protocol/scopes.js';

export interface Identity {
  /** How the caller proved itself. */
  via: 'admin-token' | 'api-token' | 'session' | 'cf-access' | 'admin-socket';
  /** Recorded as `author` of everything the caller does. */
  name: string;
  scopes: ReadonlySet<Scope>;
  /**
   * For credentials that can be revoked or expire while something derived from them lives on (a console session
   * started with an API token): false once the credential is no longer valid.
   */
  stillValid?: () => boolean;
}

/** Who a credential is, or undefined when this authenticator does not know it. */
export type Authenticator = (credential: string) => Identity | undefined;

/** Every way an operator or bot proves itself, by credential. */
export interface Authenticators {
  /** `Authorization: Bearer <token>`, tried in order (the admin token, then scoped API tokens). */
  bearer: Authenticator[];
  /** The Cloudflare Access assertion; null when Access is not configured. */
  access: CfAccess | null;
  /** Console sessions, by cookie value. */
  sessions: SessionStore;
}

/** The token of an `Authorization: Bearer <token>` header value. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}

/** The identity of a Bearer token: the first authenticator that knows it. */
export function identifyBearer(bearer: readonly Authenticator[], token: string): Identity | undefined {
  for (const auth of bearer) {
    const identity = auth(token);
    if (identity) return identity;
  }
  return undefined;
}

/** The identity the admin token authenticates as (journaled as the author of what it does). */
export const ADMIN_TOKEN_NAME = 'admin';

export function adminTokenAuthenticator(adminTokenHash: string): Authenticator {
  const identity: Identity = { via: 'admin-token', name: ADMIN_TOKEN_NAME, scopes: new Set<Scope>(['admin']) };
  return (token) => (secretMatches(token, adminTokenHash) ? identity : undefined);
}

export function hasScope(identity: Identity, scope: Scope): boolean {
  return identity.scopes.has('admin') || identity.scopes.has(scope);
}
