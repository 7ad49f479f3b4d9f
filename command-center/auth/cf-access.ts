/**
 * Cloudflare Access in front of the console and the operator API. When a team domain and an application AUD are
 * configured, every request past `GET /healthz` and the agent API (agents pass Access at the edge with a service
 * token and are authenticated here by their node signature) must carry a valid `Cf-Access-Jwt-Assertion`:
 *   RS256 only (no `none`, no HMAC), signed by a key of the team's JWKS (jose `createRemoteJWKSet`: cached, and
 *   re-fetched when a token names an unknown `kid`, at most once per cooldown; Cloudflare rotates every six weeks),
 *   `iss` = `https://<team>.cloudflareaccess.com`, `aud` contains the AUD tag, `exp`/`nbf` with a small leeway.
 * The user's email (or, for an Access service token, `service:<common_name>`) becomes the identity name, i.e. the
 * author of operator actions. `accessRefusal` is the gate rule, applied once per request by the `identify`
 * middleware (require-operator.ts): a request without the header is refused (401) unless `allowBearer` is set and
 * it carries an `Authorization` header, which the Bearer authenticators then judge. A Bearer token presented
 * together with a valid assertion wins: an explicit credential names the acting identity more precisely than the
 * ambient Access session.
 */
import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import { VaultMeshError } from '../../protocol/errors.js';
import type { CenterConfig } from '../config.js';
import type { Identity, Scope } from './operator-auth.js';

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
  /** Requests with an Authorization header but no assertion are let through to the Bearer authenticators. */
  readonly allowBearer: boolean;
  /** Verifies an assertion; throws VaultMeshError CF_ACCESS_INVALID (401) or CF_ACCESS_UNAVAILABLE (503). */
  verify(assertion: string): Promise<Identity>;
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

/** The gate rule for a request without an assertion: the refusal, or undefined when it may go on. */
export function accessRefusal(access: Pick<CfAccess, 'allowBearer'>, hasAuthorization: boolean): VaultMeshError | undefined {
  if (access.allowBearer && hasAuthorization) return undefined;
  return new VaultMeshError('CF_ACCESS_REQUIRED', 'this center is behind Cloudflare Access: the Cf-Access-Jwt-Assertion header is required', { status: 401 });
}

/**
 * A failure to obtain the signing keys (HTTP error, a body that is not a key set, timeout, refused connection). jose
 * reports an HTTP 500 or a non-JSON body as a generic JOSEError, like a bad token, so the key lookup wraps whatever
 * it throws, apart from "no key matches this token", and the cause decides the status, not the error class.
 */
class KeysUnavailable extends Error {
  constructor(cause: unknown) {
    super(`cannot fetch the Access signing keys: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

type Jose = typeof import('jose');

/**
 * jose (≈ 46 modules) is loaded only by a center with Access configured, starting when Access is set up: a center
 * without it does not pay for it at every start.
 */
let joseModule: Promise<Jose> | undefined;
const loadJose = (): Promise<Jose> => (joseModule ??= import('jose'));

function reasonOf(err: unknown, joseErrors: Jose['errors']): { code: 'CF_ACCESS_INVALID' | 'CF_ACCESS_UNAVAILABLE'; message: string } {
  if (err instanceof KeysUnavailable) {
    const cause = err.cause;
    if (cause instanceof joseErrors.JWKSTimeout) return { code: 'CF_ACCESS_UNAVAILABLE', message: 'timed out fetching the Access signing keys' };
    if (cause instanceof joseErrors.JWKSInvalid) return { code: 'CF_ACCESS_UNAVAILABLE', message: 'the Access signing keys could not be read' };
    return { code: 'CF_ACCESS_UNAVAILABLE', message: err.message };
  }
  if (err instanceof joseErrors.JWTExpired) return { code: 'CF_ACCESS_INVALID', message: 'Access token expired' };
  if (err instanceof joseErrors.JWTClaimValidationFailed) return { code: 'CF_ACCESS_INVALID', message: `Access token ${err.claim} claim rejected: ${err.reason}` };
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return { code: 'CF_ACCESS_INVALID', message: 'Access token algorithm not allowed (RS256 only)' };
  if (err instanceof joseErrors.JWKSNoMatchingKey) return { code: 'CF_ACCESS_INVALID', message: 'Access token signed by an unknown key' };
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return { code: 'CF_ACCESS_INVALID', message: 'Access token signature invalid' };
  if (err instanceof joseErrors.JWKSTimeout) return { code: 'CF_ACCESS_UNAVAILABLE', message: 'timed out fetching the Access signing keys' };
  if (err instanceof joseErrors.JWKSInvalid) return { code: 'CF_ACCESS_UNAVAILABLE', message: 'the Access signing keys could not be read' };
  if (err instanceof joseErrors.JOSEError) return { code: 'CF_ACCESS_INVALID', message: `Access token invalid (${err.code})` };
  // fetch failures (DNS, refused, HTTP errors from the certs endpoint) are ours, not the caller's
  return { code: 'CF_ACCESS_UNAVAILABLE', message: `cannot fetch the Access signing keys: ${(err as Error)?.message ?? String(err)}` };
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
  const url = new URL(certsUrl);
  // One key set for the life of this instance (its cache and cooldown), made once jose is loaded.
  let verifier: Promise<{ jose: Jose; jwks: JWTVerifyGetKey }> | undefined;
  const ready = () =>
    (verifier ??= loadJose().then((jose) => {
      const remote = jose.createRemoteJWKSet(url, {
        cooldownDuration: opts.cooldownMs ?? 30_000,
        cacheMaxAge: opts.cacheMaxAgeMs ?? 10 * 60_000,
        timeoutDuration: opts.fetchTimeoutMs ?? 5_000,
      });
      const jwks: JWTVerifyGetKey = async (header, token) => {
        try {
          return await remote(header, token);
        } catch (err) {
          // The token names a key the (fetched, valid) set does not have: the token's fault.
          if (err instanceof jose.errors.JWKSNoMatchingKey || err instanceof jose.errors.JWKSMultipleMatchingKeys) throw err;
          throw new KeysUnavailable(err);
        }
      };
      return { jose, jwks };
    }));
  void ready().catch(() => undefined); // loads jose now, in the background; a failure shows at the first verify
  const tolerance = opts.clockToleranceSecs ?? 30;

  const verify = async (assertion: string): Promise<Identity> => {
    if (assertion.length > 16_384 || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(assertion)) {
      throw new VaultMeshError('CF_ACCESS_INVALID', 'Access token is not a compact JWS', { status: 401 });
    }
    const { jose, jwks } = await ready();
    let payload: JWTPayload;
    try {
      ({ payload } = await jose.jwtVerify(assertion, jwks, {
        algorithms: ['RS256'],
        issuer,
        audience: opts.aud,
        clockTolerance: tolerance,
        requiredClaims: ['exp', 'iat'],
        ...(opts.now ? { currentDate: opts.now() } : {}),
      }));
    } catch (err) {
      const r = reasonOf(err, jose.errors);
      throw new VaultMeshError(r.code, r.message, { cause: err });
    }
    const identity = identityFromClaims(payload, opts);
    // What outlives the request (an open stream) ends when the assertion does.
    const expMs = (payload.exp as number) * 1000 + tolerance * 1000;
    return { ...identity, stillValid: () => (opts.now?.() ?? new Date()).getTime() < expMs };
  };

  return { issuer, certsUrl, allowBearer: opts.allowBearer ?? false, verify };
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
