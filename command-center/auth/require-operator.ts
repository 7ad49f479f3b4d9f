/**
 * Operator/bot identity, resolved once per request, and the per-route checks that read it.
 *
 * `identify()` looks at the credentials a request carries and sets the typed context variables: `identity` (who),
 * `session` (the console session, when the identity came from the cookie) and `authRefusal` (why a presented
 * credential did not count, e.g. a cookie POST without its CSRF token). It never refuses a request for lacking an
 * identity, since the console's login page is public; `requireOperator()` does, on the routes that need one.
 * With Cloudflare Access configured it also applies the Access gate (cf-access.ts), because the assertion is one
 * of the credentials.
 *
 * Precedence: an explicit Bearer token (a wrong one is refused, never passed over), then the Access assertion, then
 * the admin socket's local admin (local-admin.ts: a request on that socket skips the Access gate), then the console
 * cookie.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { VaultMeshError } from '../../protocol/errors.js';
import { accessRefusal, CF_ACCESS_HEADER } from './cf-access.js';
import { resolveSession } from '../console/session.js';
import { localAdminOf } from './local-admin.js';
import { bearerToken, hasScope, identifyBearer, type Identity, type Scope } from './operator-auth.js';
import type { AppEnv } from '../services.js';

export function identify(): MiddlewareHandler<AppEnv> {
  return async function identify(c, next) {
    const auth = c.get('services').authenticators;
    const authorization = c.req.header('authorization');
    // Decided by the listener the request came in on, never by what it carries (local-admin.ts).
    const local = localAdminOf(c.env);
    let access: Identity | undefined;
    if (auth.access && !local) {
      const assertion = c.req.header(CF_ACCESS_HEADER)?.trim();
      if (assertion) access = await auth.access.verify(assertion); // 401/503 with the reason
      else {
        const refusal = accessRefusal(auth.access, authorization !== undefined);
        if (refusal) throw refusal;
      }
    }
    const token = bearerToken(authorization);
    if (token) {
      // An explicit credential that is wrong is refused, not replaced by an ambient one (Access, cookie, socket).
      const byToken = identifyBearer(auth.bearer, token);
      if (byToken) c.set('identity', byToken);
      else c.set('authRefusal', new VaultMeshError('UNAUTHORIZED', 'the bearer token is not valid (unknown, revoked or expired)', { status: 401 }));
      return next();
    }
    const identity = access ?? local;
    if (identity) {
      c.set('identity', identity);
      return next();
    }
    const { session, refusal } = await resolveSession(c, auth.sessions);
    if (session) {
      c.set('identity', session.identity);
      c.set('session', session);
    } else if (refusal) c.set('authRefusal', refusal);
    return next();
  };
}

/** The request's identity, or the refusal: why a presented credential did not count, else 401 with `message`. */
export function operatorOf(c: Context<AppEnv>, message = 'an operator identity is required (Authorization: Bearer <token>)'): Identity {
  const identity = c.get('identity');
  if (identity) return identity;
  throw c.get('authRefusal') ?? new VaultMeshError('UNAUTHORIZED', message, { status: 401 });
}

/** Refuses a request without an identity (mount after `identify`). */
export function requireOperator(message?: string): MiddlewareHandler<AppEnv> {
  return async function requireOperator(c, next) {
    operatorOf(c, message);
    await next();
  };
}

export function requireScope(scope: Scope): MiddlewareHandler<AppEnv> {
  return async function requireScope(c, next) {
    const identity = c.get('identity');
    if (!identity || !hasScope(identity, scope)) {
      throw new VaultMeshError('FORBIDDEN', `this action needs the ${scope} scope`, { status: 403 });
    }
    await next();
  };
}
