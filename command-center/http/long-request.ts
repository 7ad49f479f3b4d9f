/**
 * Streams and long-polls say so on their route (`app.get('/', longRequest('stream'), handler)`), so the request
 * timeout and the per-identity stream cap (rate-limit.ts), which run before routing decides, know them without
 * matching paths: they ask which routes the request matched.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { COMPOSED_HANDLER } from 'hono/utils/constants';

/** `stream`: a response that stays open (SSE); `long-poll`: a request held until there is something to answer. */
export type LongRequestKind = 'stream' | 'long-poll';

const MARK = Symbol('vaultmesh.long-request');
type Marked = { [MARK]?: LongRequestKind; [COMPOSED_HANDLER]?: Marked };

/** The route marker: a pass-through middleware carrying its kind. */
export function longRequest(kind: LongRequestKind): MiddlewareHandler {
  const mark: MiddlewareHandler & Marked = async function longRequest(_c, next) {
    await next();
  };
  mark[MARK] = kind;
  return mark;
}

/** The kind of long request the matched route is marked as, or undefined for an ordinary request. */
export function longRequestKind(c: Context): LongRequestKind | undefined {
  for (const { handler } of matchedRoutes(c)) {
    // A sub-app with its own onError wraps each handler; the original is kept under COMPOSED_HANDLER.
    const h = handler as unknown as Marked;
    const kind = h[MARK] ?? h[COMPOSED_HANDLER]?.[MARK];
    if (kind) return kind;
  }
  return undefined;
}
