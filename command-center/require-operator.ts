/** Operator/bot authentication and per-route scope checks. */
import type { MiddlewareHandler } from 'hono';
import { VaultMeshError } from '../protocol/errors.js';
import { hasScope, type Scope } from './operator-auth.js';
import type { AppEnv } from './services.js';

export function requireOperator(): MiddlewareHandler<AppEnv> {
  return async function requireOperator(c, next) {
    for (const auth of c.get('services').authenticators) {
      const identity = await auth(c);
      if (identity) {
        c.set('identity', identity);
        return next();
      }
    }
    throw new VaultMeshError('UNAUTHORIZED', 'an operator identity is required (Authorization: Bearer <token>)', { status: 401 });
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
