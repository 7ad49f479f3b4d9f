/** Operator API for scoped API tokens: `POST /api/tokens`, `GET /api/tokens`, `DELETE /api/tokens/:id` (admin scope). */
import { Hono } from 'hono';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { VaultMeshError } from '../../protocol/errors.js';
import { API_TOKEN_KIND, API_TOKEN_PREFIX, createApiTokenState, SCOPES, scopeSchema, tokenIdSchema, tokenNameSchema, tokenStatus, tokenView, type ApiTokenState } from '../auth/api-tokens.js';
import { readJson, validationError } from '../http/http-errors.js';
import { requireScope } from '../auth/require-operator.js';
import { hashSecret, newSecret } from '../auth/secrets.js';
import type { AppEnv, Services } from '../services.js';

const MAX_TTL_SECS = 5 * 366 * 86_400;

const createTokenSchema = z
  .object({
    name: tokenNameSchema,
    scopes: z.array(scopeSchema).min(1).max(SCOPES.length),
    /** Omitted or null: the token does not expire. */
    ttl_secs: z.number().int().min(60).max(MAX_TTL_SECS).nullable().optional(),
  })
  .strict();

function tokensOf(s: Services): ApiTokenState {
  return (s.state.apiTokens ??= createApiTokenState());
}

export function tokenRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.post('/tokens', requireScope('admin'), async (c) => {
    const s = c.get('services');
    const parsed = createTokenSchema.safeParse(await readJson(c));
    if (!parsed.success) throw validationError(parsed.error);
    const { name, ttl_secs } = parsed.data;
    const scopes = [...new Set(parsed.data.scopes)];
    const nowMs = s.now().getTime();
    for (const t of tokensOf(s).byId.values()) {
      if (t.name === name && tokenStatus(t, nowMs) === 'active') {
        throw new VaultMeshError('NAME_TAKEN', `an active token is already named ${name}: revoke it first or pick another name`, { status: 409 });
      }
    }
    const token = newSecret(API_TOKEN_PREFIX);
    const tokenId = randomBytes(6).toString('hex');
    const expiresAt = ttl_secs ? new Date(nowMs + ttl_secs * 1000).toISOString() : null;
    const { envelope } = await s.submit({
      kind: API_TOKEN_KIND,
      author: c.get('identity').name,
      body: { action: 'create', token_id: tokenId, name, scopes, token_sha256: hashSecret(token), expires_at: expiresAt },
    });
    // The token itself is shown once, here; the journal keeps only its hash.
    return c.json({ token, token_id: tokenId, name, scopes, expires_at: expiresAt, created_at: envelope.ts }, 201);
  });

  app.get('/tokens', requireScope('admin'), (c) => {
    const s = c.get('services');
    const nowMs = s.now().getTime();
    const list = [...tokensOf(s).byId.values()].sort((a, b) => a.created_at.localeCompare(b.created_at));
    return c.json(list.map((t) => tokenView(t, nowMs, s.apiTokenUsage.lastUsed(t.token_id))));
  });

  app.delete('/tokens/:id', requireScope('admin'), async (c) => {
    const s = c.get('services');
    const id = tokenIdSchema.safeParse(c.req.param('id'));
    if (!id.success) throw validationError(id.error, 'token id');
    const t = tokensOf(s).byId.get(id.data);
    if (!t) throw new VaultMeshError('NOT_FOUND', 'no such API token', { status: 404 });
    if (!t.revoked_at) await s.submit({ kind: API_TOKEN_KIND, author: c.get('identity').name, body: { action: 'revoke', token_id: t.token_id } });
    return c.json(tokenView(t, s.now().getTime(), s.apiTokenUsage.lastUsed(t.token_id)));
  });

  return app;
}
