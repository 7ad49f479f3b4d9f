/**
 * Cloudflare Access in front of the console and the operator API. When a team domain and an application AUD are
 * configured, every request except `GET /healthz` and the agent API (`/api/agent/*`: agents pass Access at the
 * edge with a service token and are authenticated here by their node signature) must carry a valid
 * `Cf-Access-Jwt-Assertion`:
 *   RS256 only (no `none`, no HMAC), signed by a key of the team's JWKS (jose `createRemoteJWKSet`: cached, and
 *   re-fetched when a token names an unknown `kid`, at most once per cooldown; Cloudflare rotates every six weeks),
 *   `iss` = `https://<team>.cloudflareaccess.com`, `aud` contains the AUD tag, `exp`/`nbf` with a small leeway.
 * The user's email (or, for an Access service token, `service:<common_name>`) becomes the identity name, i.e. the
 * author of operator actions. A request without the header is refused (401) unless `allowBearer` is set and it
 * carries an `Authorization` header, which the ordinary authenticators then judge. A Bearer token presented
 * together with a valid assertion wins: an explicit credential names the acting identity more precisely than the
 * ambient Access session.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { VaultMeshError } from '../protocol/errors.js';
import type { CenterConfig } from './config.js';
import type { Authenticator, Identity, Scope } from './operator-auth.js';
import type { AppEnv } from './services.js';

export const CF_ACCESS_HEADER = 'cf-access-jwt-assertion';

export interface CfAccessOptions {
  /** `myteam`, `myteam.cloudflareaccess.com` or `https://myteam.cloudflareaccess.com`. */
  teamDomain: string;
  /** The Access application's AUD tag. */
  aud: string;
  /** JWKS URL; default `https://<team>.cloudflareaccess.com/cdn-cgi/access/certs`. */
  certsUrl?: string;
  /** Accept requests with an Authorization header but no assertion (bots that do not pass Access). */
  allowBearer?: boolean;
  /** Scopes of an Access user (email). */
  userScopes: Scope[];
  /** Scopes of an Access service token. */
  serviceScopes: Scope[];
  clockToleranceSecs?: number;
  /** Minimum time between JWKS re-fetches for unknown key ids. */
  cooldownMs?: number;
  /** How long a fetched JWKS is used before it is re-fetched anyway. */
  cacheMaxAgeMs?: number;
  fetchTimeoutMs?: number;
  now?: () => Date;
}

export interface CfAccess {
  readonly issuer: string;
  readonly certsUrl: string;
  /** Verifies an assertion; throws VaultMeshError CF_ACCESS_INVALID (401) or CF_ACCESS_UNAVAILABLE (503). */
  verify(assertion: string): Promise<Identity>;
  /** The request's Access identity (verified once per request), or undefined without the header. */
  identityOf(c: Context): Promise<Identity | undefined>;
  /** For `services.authenticators`. */
  authenticator: Authenticator;
  /** The gate middleware (mounted by createApp when `services.cfAccess` is set). */
  gate(): MiddlewareHandler<AppEnv>;
}

export function normaliseTeamDomain(team: string): string {
  const host = team
    .trim()
    .replace(/^https?:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
  if (!/^[a-z0-9][a-z0-9-]{0,62}(\.[a-z0-9-]{1,63})*$/.test(host)) {
    throw new VaultMeshError('CONFIG_INVALID', `invalid Cloudflare Access team domain ${JSON.stringify(team)}`);
  }
  return host.includes('.') ? host : `${host}.cloudflareaccess.com`;
}

/** Paths that never need Access at the center: liveness and the (node-signed) agent API. */
export function isAccessExempt(path: string): boolean {
  return path === '/healthz' || path === '/api/agent' || path.startsWith('/api/agent/');
}

function reasonOf(err: unknown): { code: string; message: string; status: number } {
  if (err instanceof joseErrors.JWTExpired) return { code: 'CF_ACCESS_INVALID', message: 'Access token expired', status: 401 };
  if (err instanceof joseErrors.JWTClaimValidationFailed) return { code: 'CF_ACCESS_INVALID', message: `Access token ${err.claim} claim rejected: ${err.reason}`, status: 401 };
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return { code: 'CF_ACCESS_INVALID', message: 'Access token algorithm not allowed (RS256 only)', status: 401 };
  if (err instanceof joseErrors.JWKSNoMatchingKey) return { code: 'CF_ACCESS_INVALID', message: 'Access token signed by an unknown key', status: 401 };
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return { code: 'CF_ACCESS_INVALID', message: 'Access token signature invalid', status: 401 };
  if (err instanceof joseErrors.JWKSTimeout) return { code: 'CF_ACCESS_UNAVAILABLE', message: 'timed out fetching the Access signing keys', status: 503 };
  if (err instanceof joseErrors.JWKSInvalid) return { code: 'CF_ACCESS_UNAVAILABLE', message: 'the Access signing keys could not be read', status: 503 };
  if (err instanceof joseErrors.JOSEError) return { code: 'CF_ACCESS_INVALID', message: `Access token invalid (${err.code})`, status: 401 };
  // fetch failures (DNS, refused, HTTP errors from the certs endpoint) are ours, not the caller's
  return { code: 'CF_ACCESS_UNAVAILABLE', message: `cannot fetch the Access signing keys: ${(err as Error)?.message ?? String(err)}`, status: 503 };
}

export function identityFromClaims(claims: JWTPayload, opts: Pick<CfAccessOptions, 'userScopes' | 'serviceScopes'>): Identity {
  const email = typeof claims.email === 'string' ? claims.email.trim() : '';
  const commonName = typeof claims.common_name === 'string' ? claims.common_name.trim() : '';
  if (email && email.length <= 254) return { via: 'cf-access', name: email, scopes: new Set(opts.userScopes) };
  if (commonName && commonName.length <= 200) return { via: 'cf-access', name: `service:${commonName}`, scopes: new Set(opts.serviceScopes) };
  throw new VaultMeshError('CF_ACCESS_INVALID', 'Access token names neither an email nor a service token', { status: 401 });
}

export function createCfAccess(opts: CfAccessOptions): CfAccess {
  const team = normaliseTeamDomain(opts.teamDomain);
  const issuer = `https://${team}`;
  const certsUrl = opts.certsUrl ?? `${issuer}/cdn-cgi/access/certs`;
  const jwks = createRemoteJWKSet(new URL(certsUrl), {
    cooldownDuration: opts.cooldownMs ?? 30_000,
    cacheMaxAge: opts.cacheMaxAgeMs ?? 10 * 60_000,
    timeoutDuration: opts.fetchTimeoutMs ?? 5_000,
  });
  const tolerance = opts.clockToleranceSecs ?? 30;
  // One verification per request, shared by the gate and the authenticator (and the console's own look-ups).
  const perRequest = new WeakMap<Request, Promise<Identity>>();

  const verify = async (assertion: string): Promise<Identity> => {
    if (assertion.length > 16_384 || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(assertion)) {
      throw new VaultMeshError('CF_ACCESS_INVALID', 'Access token is not a compact JWS', { status: 401 });
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(assertion, jwks, {
        algorithms: ['RS256'],
        issuer,
        audience: opts.aud,
        clockTolerance: tolerance,
        requiredClaims: ['exp', 'iat'],
        ...(opts.now ? { currentDate: opts.now() } : {}),
      }));
    } catch (err) {
      const r = reasonOf(err);
      throw new VaultMeshError(r.code, r.message, { status: r.status, cause: err });
    }
    return identityFromClaims(payload, opts);
  };

  const identityOf = (c: Context): Promise<Identity | undefined> => {
    const assertion = c.req.header(CF_ACCESS_HEADER);
    if (!assertion) return Promise.resolve(undefined);
    let p = perRequest.get(c.req.raw);
    if (!p) {
      p = verify(assertion.trim());
      p.catch(() => undefined);
      perRequest.set(c.req.raw, p);
    }
    return p;
  };

  return {
    issuer,
    certsUrl,
    verify,
    identityOf,
    authenticator: async (c) => {
      try {
        return await identityOf(c);
      } catch {
        return undefined; // the gate reports why; here an invalid assertion is just no identity
      }
    },
    gate() {
      return async function cfAccessGate(c, next) {
        if (isAccessExempt(c.req.path)) return next();
        if (c.req.header(CF_ACCESS_HEADER)) {
          await identityOf(c); // throws 401/503 with the reason
          return next();
        }
        if (opts.allowBearer && c.req.header('authorization')) return next();
        throw new VaultMeshError('CF_ACCESS_REQUIRED', 'this center is behind Cloudflare Access: the Cf-Access-Jwt-Assertion header is required', { status: 401 });
      };
    },
  };
}

/** Access as configured: undefined when off; a half-configured Access (one of domain/AUD) refuses to start. */
export function cfAccessFromConfig(config: CenterConfig): CfAccess | undefined {
  const { cfAccessTeamDomain: team, cfAccessAud: aud } = config;
  if (!team && !aud) return undefined;
  if (!team || !aud) {
    throw new VaultMeshError('CONFIG_INVALID', 'Cloudflare Access needs both VAULTMESH_CF_ACCESS_TEAM_DOMAIN and VAULTMESH_CF_ACCESS_AUD (--cf-access-team-domain, --cf-access-aud)');
  }
  return createCfAccess({
    teamDomain: team,
    aud,
    ...(config.cfAccessCertsUrl ? { certsUrl: config.cfAccessCertsUrl } : {}),
    allowBearer: config.cfAccessAllowBearer,
    userScopes: config.cfAccessScopes,
    serviceScopes: config.cfAccessServiceScopes,
  });
}
