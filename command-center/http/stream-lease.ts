/**
 * A stream is a lease on the credential that opened it. The identity was resolved once, when the stream opened; a
 * stream lives for hours, so it asks again before every event it sends and at least at every keepalive: when the
 * API token is revoked or expires, the console session is signed out or expires, or the Access assertion expires,
 * the stream ends. And every stream ends after `streamMaxSecs` whatever its credential, so the client reconnects
 * and authenticates afresh.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../services.js';

/** Why a stream ended on its own (sent to the client as `event: end`). */
export type StreamEnd = 'credential_invalid' | 'session_ended' | 'max_lifetime';

/** Undefined while the stream may go on, else the reason it must end. */
export type StreamLease = () => StreamEnd | undefined;

/** How often an idle stream re-checks its lease by default: each keepalive. */
export const DEFAULT_STREAM_CHECK_MS = 15_000;

export function streamLease(c: Context<AppEnv>): StreamLease {
  const services = c.get('services');
  const identity = c.get('identity');
  const session = c.get('session');
  const endsAt = services.now().getTime() + services.config.streamMaxSecs * 1000;
  return () => {
    if (session && !services.authenticators.sessions.alive(session)) return 'session_ended';
    if (identity?.stillValid && !identity.stillValid()) return 'credential_invalid';
    if (services.now().getTime() >= endsAt) return 'max_lifetime';
    return undefined;
  };
}
