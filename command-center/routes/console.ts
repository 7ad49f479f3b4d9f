/**
 * The mission console: `GET /console` (full page; `?node=ID` selects a node, `q`/`profile`/`status` filter the
 * list), `GET /console/stream` (HTML fragments over SSE for htmx), sign-in/out, and enrollment decisions. The
 * identity comes from the same `identify` middleware as the API's (Bearer tokens, console sessions, Cloudflare
 * Access); only the login page and the static assets (htmx, its SSE extension, CSS, JS, all served from this
 * package, never a CDN) are public.
 */
import { shortDuration } from '../../protocol/describe.js';
import { Hono, type Context } from 'hono';
import { createHash } from 'node:crypto';
import { idSchema, nodeIdSchema } from '../../protocol/envelope.js';
import { INCIDENT_SEVERITIES, validateClientEvent } from '../../protocol/event-kinds.js';
import { VaultMeshError } from '../../protocol/errors.js';
import { decideNodeEnrollment, ENROLLMENT_ACTIONS } from '../fleet/enrollment-actions.js';
import { hasScope, identifyBearer, type Identity } from '../auth/operator-auth.js';
import { operatorOf, requireOperator } from '../auth/require-operator.js';
import { longRequest } from '../http/long-request.js';
import type { AppEnv, Services } from '../services.js';
import { ConsoleLive, consoleStreamResponse } from '../console/live.js';
import { buildPanelsInTurns, FEED_LIMIT, TIMELINE_LIMIT, describeContextOf, type ConsoleHistory } from '../console/panels.js';
import { ENVELOPE_KIND_NAMES } from '../../protocol/envelope-kinds.js';
import type { Envelope } from '../../protocol/envelope.js';
import { z } from 'zod';
import { readAsset } from '../../lib/assets.js';
import { nextTurn } from '../../lib/next-turn.js';
import { createConsoleRenderer, type ConsoleRenderer } from '../console/render.js';
import { clearedSessionCookie, crossOriginReason, readCookie, SESSION_COOKIE, sessionCookie } from '../console/session.js';
import {
  STATUS_FILTERS,
  commandArgsFromForm,
  commandForm,
  consoleHref,
  feedItem,
  isFeedEnvelope,
  parseFilter,
  parseListView,
  profilesOf,
  tagsOf,
  timeline,
  viewQuery,
  type ListView,
} from '../console/view-model.js';
import { KEEPALIVE_MS } from './stream.js';
import { DEFAULT_STREAM_CHECK_MS, streamLease } from '../http/stream-lease.js';
import { readForm, validationError } from '../http/http-errors.js';
import { keyIdSchema } from '../../protocol/hex.js';
import { consoleTarget, maintenanceFormView } from '../console/maintenance-view.js';
import { maintenanceIdSchema, maintenanceStartRequestSchema } from '../../protocol/maintenance.js';
import { proposalsAwaiting } from '../console/proposals.js';

/** CSP for console responses: scripts only from this origin (no inline), no framing, no plugins. */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export interface ConsoleRouteOptions {
  keepaliveMs?: number;
  /** How often an idle stream re-checks the session or token behind it (default: every keepalive). */
  streamCheckMs?: number;
  /** How often the stream flushes coalesced changes. */
  tickMs?: number;
  renderer?: ConsoleRenderer;
}

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

function loadAssets(renderer: ConsoleRenderer): Map<string, Asset> {
  const files: Record<string, [() => Buffer, string]> = {
    'htmx.min.js': [() => readAsset('htmx.org/dist/htmx.min.js'), 'text/javascript; charset=utf-8'],
    'hx-sse.js': [() => readAsset('htmx.org/dist/ext/hx-sse.js'), 'text/javascript; charset=utf-8'],
    'console.js': [() => renderer.asset('console.js'), 'text/javascript; charset=utf-8'],
    'console.css': [() => renderer.asset('console.css'), 'text/css; charset=utf-8'],
  };
  const out = new Map<string, Asset>();
  for (const [name, [load, type]] of Object.entries(files)) {
    const body = load();
    out.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"` });
  }
  return out;
}

const SIGN_IN_FIRST = 'sign in to the console first';

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** Who a token typed into the login form is: the Bearer authenticators, asked directly. */
function identityForToken(services: Services, token: string): Identity | undefined {
  if (!/^\S{1,512}$/.test(token)) return undefined;
  return identifyBearer(services.authenticators.bearer, token);
}

function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/console(?:[/?][^\s\\]*)?$/.test(next) && !next.startsWith('//') ? next : '/console';
}

function selectedNode(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  const r = nodeIdSchema.safeParse(raw);
  return r.success ? r.data : undefined;
}

/** Every kind but heartbeats: the feed and the timelines read these from the event log (heartbeats would drown them). */
const HISTORY_KINDS = ENVELOPE_KIND_NAMES.filter((k) => k !== 'heartbeat');

/** The feed's and the selected node's history from the event log (store-backed, so it reaches past the bus's window). */
async function readHistory(services: Services, selected: string | undefined): Promise<ConsoleHistory> {
  const [feed, node] = await Promise.all([
    // A few extra: `completed` command events are read but not shown.
    services.eventLog.query({ kinds: HISTORY_KINDS, order: 'desc', limit: FEED_LIMIT + 20 }),
    selected ? services.eventLog.query({ kinds: HISTORY_KINDS, nodeId: selected, order: 'desc', limit: TIMELINE_LIMIT, scanLimit: HISTORY_SCAN_LIMIT }) : undefined,
  ]);
  return { feed: feed.items, node: node?.items ?? [], nodeOlder: node?.next ? Number(node.next) : undefined };
}

/**
 * Envelopes read per journal for one node's page of history before it answers with what it found: a node with few
 * events of its own must not make every console load read whole journals. The "older" link continues from there.
 */
const HISTORY_SCAN_LIMIT = 20_000;

const olderQuerySchema = z.object({ before: z.coerce.number({ message: 'before: a seq' }).int('before: a seq').min(1, 'before: a seq').max(Number.MAX_SAFE_INTEGER) });

function viewOrThrow(query: Record<string, string | undefined>): ListView {
  const r = parseListView(query);
  if (!r.ok) throw new VaultMeshError('VALIDATION_ERROR', r.issues.map((i) => i.message).join('; '), { status: 400, details: r.issues });
  return r.view;
}

export function consoleRoutes(opts: ConsoleRouteOptions = {}): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const renderer = opts.renderer ?? createConsoleRenderer();
  const assets = loadAssets(renderer);

  app.use('*', async function consoleHeaders(c, next) {
    await next();
    c.header('content-security-policy', CONSOLE_CSP);
    c.header('x-content-type-options', 'nosniff');
    // What the app-wide security headers (http/app.ts) always sent: they used to override this one afterwards.
    c.header('referrer-policy', 'no-referrer');
    c.header('x-frame-options', 'DENY');
    c.header('cross-origin-opener-policy', 'same-origin');
    if (!c.res.headers.has('cache-control')) c.header('cache-control', 'no-store');
  });

  app.get('/assets/:file', (c) => {
    const a = assets.get(c.req.param('file'));
    if (!a) throw new VaultMeshError('NOT_FOUND', 'no such asset', { status: 404 });
    if (c.req.header('if-none-match') === a.etag) return c.body(null, 304, { etag: a.etag, 'cache-control': 'no-cache' });
    return c.body(new Uint8Array(a.body), 200, { 'content-type': a.type, etag: a.etag, 'cache-control': 'no-cache' });
  });

  const loginPage = (c: Context<AppEnv>, status: 200 | 401 | 403, error?: string) =>
    c.html(renderer.login({ error, next: safeNext(c.req.query('next')), sessionsEnabled: true }), status);

  app.get('/login', (c) => loginPage(c, 200));

  app.post('/login', async (c) => {
    const services = c.get('services');
    const sessions = services.authenticators.sessions;
    // Login CSRF: a foreign page must not sign a browser in under the attacker's token.
    const cross = crossOriginReason(c);
    if (cross) return loginPage(c, 403, `Sign-in refused: ${cross}.`);
    const form: Record<string, unknown> = await c.req.parseBody().catch(() => ({})); // a malformed form is no token (401), not a 500
    const token = typeof form.token === 'string' ? form.token.trim() : '';
    const identity = token ? identityForToken(services, token) : undefined;
    if (!identity) return loginPage(c, 401, 'That token is not valid.');
    const { id } = sessions.create(identity);
    c.header('set-cookie', sessionCookie(c, id, Math.floor(sessions.ttlMs / 1000)));
    return c.redirect(safeNext(form.next), 303);
  });

  app.post('/logout', async (c) => {
    const refusal = c.get('authRefusal'); // a cookie without its CSRF token, or from another site
    if (refusal) throw refusal;
    const id = readCookie(c.req.header('cookie'), SESSION_COOKIE);
    if (c.get('session') && id) c.get('services').authenticators.sessions.destroy(id);
    c.header('set-cookie', clearedSessionCookie(c));
    return c.redirect('/console/login', 303);
  });

  app.get('/', async (c) => {
    const services = c.get('services');
    const identity = c.get('identity');
    if (!identity) {
      const url = new URL(c.req.url);
      return c.redirect(`/console/login?next=${encodeURIComponent(url.pathname + url.search)}`, 303);
    }
    if (!hasScope(identity, 'nodes:read')) throw new VaultMeshError('FORBIDDEN', 'the console needs the nodes:read scope', { status: 403 });
    const parsed = parseListView(c.req.query());
    if (!parsed.ok) {
      // A page, not an API: the refusal is readable, names each bad parameter, and links back to a working view.
      const html = `<ul class="result error">${parsed.issues.map((i) => `<li>${escapeHtml(i.message)}</li>`).join('')}</ul>`;
      return c.html(renderer.notice({ title: 'That list view is not valid', html, back: '/console' }), 400);
    }
    const filter = parsed.view;
    const selected = selectedNode(c.req.query('node'));
    const history = await readHistory(services, selected);
    const nowMs = services.now().getTime();
    const seq = services.state.lastSeq;
    // In turns, and the templates in one more: a page at 10,000 nodes must not hold the heartbeats behind it.
    const p = await buildPanelsInTurns(services, { filter, selected, history }, nowMs);
    await nextTurn();
    const csrf = c.get('session')?.csrfToken ?? '';
    const stream = new URLSearchParams(viewQuery(p.list.view, selected));
    stream.set('seq', String(seq));
    stream.set('at', String(nowMs));
    return c.html(
      renderer.page({
        title: selected ? `${services.state.nodes.get(selected)?.hostname ?? selected} · VaultMesh` : 'VaultMesh Mission Console',
        identity,
        csrf,
        bar: p.bar,
        list: p.list,
        pending: p.pending,
        canApprove: hasScope(identity, 'nodes:approve'),
        proposals: proposalsAwaiting(services.state, nowMs),
        canDecide: hasScope(identity, 'commands:write'),
        me: identity.name,
        // Rotating the center key is the admin's alone, and only offered on the fleet overview.
        keyForm: { available: !selected && hasScope(identity, 'admin'), keyId: services.centerKey.keyId, overlap: shortDuration(services.config.centerKeyOverlapSecs) },
        filter,
        profiles: profilesOf(services.state),
        tags: tagsOf(services.state),
        statusFilters: STATUS_FILTERS,
        selected,
        detail: p.detail,
        overview: p.overview,
        attention: p.attention,
        findings: p.findings,
        feed: p.feed,
        feedOlder: p.feedOlder,
        command: commandForm(services.commands.policy, selected ? services.state.nodes.get(selected) : undefined, { canIssue: hasScope(identity, 'commands:write') }),
        note: { available: hasScope(identity, 'events:write'), node: p.detail ? selected : undefined, severities: INCIDENT_SEVERITIES },
        maintenance: maintenanceFormView(hasScope(identity, 'events:write'), p.detail && selected ? services.state.nodes.get(selected) : undefined),
        streamUrl: `/console/stream?${stream}`,
      }),
    );
  });

  app.get('/stream', longRequest('stream'), requireOperator(SIGN_IN_FIRST), async (c) => {
    const services = c.get('services');
    const identity = c.get('identity');
    if (!hasScope(identity, 'nodes:read')) throw new VaultMeshError('FORBIDDEN', 'the console needs the nodes:read scope', { status: 403 });
    // The stream carries the page's view (filter, order, page): it renders and sends only the rows that page shows.
    const filter = viewOrThrow(c.req.query());
    const selected = selectedNode(c.req.query('node'));
    const history = await readHistory(services, selected);
    const live = new ConsoleLive(services, renderer, { filter, selected, history, canApprove: hasScope(identity, 'nodes:approve'), canDecide: hasScope(identity, 'commands:write'), me: identity.name, csrf: c.get('session')?.csrfToken ?? '' });
    // The page's own first stream may skip re-sending what the page just rendered, if nothing was committed since;
    // every later (re)connect gets full state, since the client may have missed anything.
    const nowMs = services.now().getTime();
    const at = Number(c.req.query('at'));
    const fresh = c.req.header('last-event-id') === undefined && c.req.query('seq') === String(services.state.lastSeq) && at <= nowMs && nowMs - at < 30_000;
    return consoleStreamResponse(services, live, {
      first: fresh ? { adoptAtMs: at } : 'full',
      keepaliveMs: opts.keepaliveMs ?? KEEPALIVE_MS,
      checkMs: opts.streamCheckMs ?? DEFAULT_STREAM_CHECK_MS,
      lease: streamLease(c),
      ...(opts.tickMs !== undefined ? { tickMs: opts.tickMs } : {}),
    });
  });

  // Older history, a page at a time by seq, from the event log: the feed's and a node timeline's "Older events"
  // links. htmx swaps the fragment in place of the link; without script the link opens a plain page.
  const historyPage = async (c: Context<AppEnv>, opts: { nodeId?: string; target: string; path: string }) => {
    const services = c.get('services');
    const identity = c.get('identity');
    if (!hasScope(identity, 'nodes:read')) throw new VaultMeshError('FORBIDDEN', 'the console needs the nodes:read scope', { status: 403 });
    const q = olderQuerySchema.safeParse(c.req.query());
    if (!q.success) throw new VaultMeshError('VALIDATION_ERROR', q.error.issues[0]!.message, { status: 400, details: q.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) });
    const page = await services.eventLog.query({ kinds: HISTORY_KINDS, ...(opts.nodeId ? { nodeId: opts.nodeId } : {}), order: 'desc', before: q.data.before, limit: opts.nodeId ? TIMELINE_LIMIT : FEED_LIMIT, scanLimit: HISTORY_SCAN_LIMIT });
    const describe = describeContextOf(services);
    const shown = page.items.filter((e: Envelope) => isFeedEnvelope(e));
    const items = opts.nodeId ? timeline([...shown].reverse(), TIMELINE_LIMIT, describe) : shown.map((e) => feedItem(e, parseFilter({}), describe));
    const older = page.next ? `${opts.path}?before=${page.next}` : '';
    const html = renderer.partial('history-page', { items, timeline: !!opts.nodeId, older, target: opts.target });
    if (c.req.header('hx-request')) return c.html(html);
    return c.html(renderer.notice({ title: opts.nodeId ? `Timeline of ${opts.nodeId}` : 'Event feed', html: `<ol class="${opts.nodeId ? 'timeline' : 'feed'}">${html}</ol>`, back: consoleHref(parseFilter({}), opts.nodeId) }));
  };

  app.get('/feed', requireOperator(SIGN_IN_FIRST), (c) => historyPage(c, { target: 'feed-older', path: '/console/feed' }));

  app.get('/nodes/:id/timeline', requireOperator(SIGN_IN_FIRST), (c) => {
    const nodeId = selectedNode(c.req.param('id'));
    if (!nodeId) throw new VaultMeshError('VALIDATION_ERROR', 'invalid node id', { status: 400 });
    if (!c.get('services').state.nodes.has(nodeId)) throw new VaultMeshError('NOT_FOUND', `no node ${nodeId}`, { status: 404 });
    return historyPage(c, { nodeId, target: 'timeline-older', path: `/console/nodes/${nodeId}/timeline` });
  });

  for (const action of ENROLLMENT_ACTIONS) {
    // requireOperator: a cookie without the CSRF token or from another site is refused (403) here.
    app.post(`/nodes/:id/${action}`, requireOperator(SIGN_IN_FIRST), async (c) => {
      const identity = c.get('identity');
      if (!hasScope(identity, 'nodes:approve')) throw new VaultMeshError('FORBIDDEN', `${action} needs the nodes:approve scope`, { status: 403 });
      const nodeId = selectedNode(c.req.param('id'));
      if (!nodeId) throw new VaultMeshError('VALIDATION_ERROR', 'invalid node id', { status: 400 });
      await decideNodeEnrollment(c.get('services'), { nodeId, action, author: identity.name });
      // htmx posts expect no swap (the stream shows the result); a plain form post goes back to the console.
      return c.req.header('hx-request') ? c.body(null, 204) : c.redirect(consoleHref(parseFilter({}), nodeId), 303);
    });
  }

  // Approve or deny a proposed command, as the signed-in operator (CommandService.decide enforces the rules). The
  // answer is a short fragment for the panel's result area; the panel itself follows over the stream.
  for (const kind of ['approve', 'deny'] as const) {
    app.post(`/commands/:id/${kind}`, async (c) => {
      const htmx = c.req.header('hx-request') !== undefined;
      const answer = (status: 200 | 400 | 401 | 403 | 404 | 409 | 429 | 503, ok: boolean, text: string) => {
        const html = `<p class="result ${ok ? 'ok' : 'error'}" role="${ok ? 'status' : 'alert'}">${escapeHtml(text)}</p>`;
        if (htmx) return c.html(html, status);
        return c.html(renderer.notice({ title: ok ? 'Done' : 'Not done', html, back: '/console' }), status);
      };
      try {
        const identity = operatorOf(c, SIGN_IN_FIRST); // a cookie without the CSRF token or from another site throws 403 here
        if (!hasScope(identity, 'commands:write')) throw new VaultMeshError('FORBIDDEN', `${kind} needs the commands:write scope`, { status: 403 });
        const id = idSchema.safeParse(c.req.param('id'));
        if (!id.success) throw new VaultMeshError('VALIDATION_ERROR', 'invalid command id', { status: 400 });
        const form = await readForm(c);
        const reason = typeof form.reason === 'string' && form.reason.trim() ? form.reason.trim().slice(0, 512) : undefined;
        const rec = await c.get('services').commands.decide({ id: id.data, author: identity.name, kind, ...(reason ? { reason } : {}) });
        if (!htmx) return c.redirect('/console', 303);
        const p = rec.proposal!;
        const text =
          rec.status === 'denied'
            ? `Denied ${rec.action} (${rec.id}): it will not be signed.`
            : rec.status === 'proposed'
              ? `Approved ${rec.action} (${rec.id}): ${p.approvals.length} of ${p.required} approvals.`
              : `Approved ${rec.action} (${rec.id}): ${p.approvals.length} of ${p.required} approvals, so it is signed and queued.`;
        return answer(200, true, text);
      } catch (err) {
        if (!(err instanceof VaultMeshError) || (err.status >= 500 && err.status !== 503)) throw err;
        const status = ([400, 401, 403, 404, 409, 429, 503] as const).find((x) => x === err.status) ?? 400;
        return answer(status, false, `${err.message} (${err.code})`);
      }
    });
  }

  // Notes and incidents: the same validation as POST /api/events (the kind registry), authored by the operator.
  app.post('/events', requireOperator(SIGN_IN_FIRST), async (c) => {
    const identity = c.get('identity');
    if (!hasScope(identity, 'events:write')) throw new VaultMeshError('FORBIDDEN', 'posting needs the events:write scope', { status: 403 });
    const form = await readForm(c);
    const field = (k: string) => (typeof form[k] === 'string' ? (form[k] as string).trim() : '');
    const kind = field('kind');
    const nodeId = selectedNode(field('node_id'));
    const body = kind === 'incident' ? { title: field('text'), severity: field('severity') || 'medium' } : { text: field('text') };
    const result = validateClientEvent(kind === 'incident' ? 'incident' : 'note', body, nodeId);
    if (!result.ok) throw new VaultMeshError(result.code, result.issues[0]!.message, { status: 400, details: result.issues });
    if (nodeId && !c.get('services').state.nodes.has(nodeId)) throw new VaultMeshError('NOT_FOUND', `no node ${nodeId}`, { status: 404 });
    await c.get('services').submit({ kind: result.event.kind, ...(nodeId ? { node_id: nodeId } : {}), author: identity.name, body: result.event.body as Record<string, unknown> });
    return c.req.header('hx-request') ? c.body(null, 204) : c.redirect(consoleHref(parseFilter({}), nodeId), 303);
  });

  // Maintenance windows for the selected node: the same request schema and service as POST /api/maintenance.
  app.post('/maintenance', requireOperator(SIGN_IN_FIRST), async (c) => {
    const identity = c.get('identity');
    if (!hasScope(identity, 'events:write')) throw new VaultMeshError('FORBIDDEN', 'maintenance windows need the events:write scope', { status: 403 });
    const form = await readForm(c);
    const field = (k: string) => (typeof form[k] === 'string' ? (form[k] as string).trim() : '');
    const secs = /^\d{1,8}$/.test(field('for_secs')) ? Number(field('for_secs')) : NaN;
    // The form covers the selected node, its profile or one of its tags; the schema refuses anything else.
    const parsed = maintenanceStartRequestSchema.safeParse({ ...consoleTarget(field('cover'), field('node_id'), field('os_profile')), reason: field('reason'), for_secs: secs, ...(field('scans') ? { scans: field('scans') } : {}) });
    if (!parsed.success) throw validationError(parsed.error, 'maintenance form');
    await c.get('services').maintenance.start(parsed.data, identity.name);
    const selected = nodeIdSchema.safeParse(field('node_id'));
    return c.req.header('hx-request') ? c.body(null, 204) : c.redirect(consoleHref(parseFilter({}), selected.success ? selected.data : undefined), 303);
  });

  app.post('/maintenance/:id/end', requireOperator(SIGN_IN_FIRST), async (c) => {
    const identity = c.get('identity');
    if (!hasScope(identity, 'events:write')) throw new VaultMeshError('FORBIDDEN', 'maintenance windows need the events:write scope', { status: 403 });
    const id = maintenanceIdSchema.safeParse(c.req.param('id'));
    if (!id.success) throw new VaultMeshError('VALIDATION_ERROR', 'invalid maintenance window id', { status: 400 });
    const form = await readForm(c);
    await c.get('services').maintenance.end(id.data, identity.name);
    const back = selectedNode(typeof form.node_id === 'string' ? form.node_id : undefined);
    return c.req.header('hx-request') ? c.body(null, 204) : c.redirect(consoleHref(parseFilter({}), back), 303);
  });

  // Commands: the selected node, an action the policy allows for its profile, the action's args from its
  // `<action>.<arg>` fields, and an explicit confirmation. Issued through CommandService.issue, which checks the
  // node and the policy again (the form only offers what the policy allows; a stale page must not get further).
  // Refusals (policy, validation, scope, CSRF) answer 4xx with a readable fragment for the form's result area.
  app.post('/commands', async (c) => {
    const services = c.get('services');
    const htmx = c.req.header('hx-request') !== undefined;
    let nodeId: string | undefined;
    const answer = (status: 200 | 201 | 400 | 401 | 403 | 404 | 409 | 429 | 503, data: Record<string, unknown>) => {
      const html = renderer.partial('command-result', data);
      if (htmx) return c.html(html, status);
      return c.html(renderer.notice({ title: data.ok ? 'Command sent' : 'Command not sent', html, back: consoleHref(parseFilter({}), nodeId) }), status);
    };
    try {
      const identity = operatorOf(c, SIGN_IN_FIRST); // a cookie without the CSRF token or from another site throws 403 here
      if (!hasScope(identity, 'commands:write')) throw new VaultMeshError('FORBIDDEN', 'sending commands needs the commands:write scope', { status: 403 });
      const form = await readForm(c);
      nodeId = selectedNode(typeof form.node_id === 'string' ? form.node_id : undefined);
      if (!nodeId) throw new VaultMeshError('VALIDATION_ERROR', 'select a node first', { status: 400 });
      const action = typeof form.action === 'string' ? form.action.trim() : '';
      if (!action) throw new VaultMeshError('VALIDATION_ERROR', 'choose an action', { status: 400 });
      if (form.confirm !== 'yes') throw new VaultMeshError('CONFIRMATION_REQUIRED', `tick "I confirm" to send ${action} to ${nodeId}`, { status: 400 });
      const rec = await services.commands.issue({ nodeId, action, args: commandArgsFromForm(action, form), author: identity.name });
      if (!htmx) return c.redirect(consoleHref(parseFilter({}), nodeId), 303);
      const hostname = services.state.nodes.get(nodeId)?.hostname ?? nodeId;
      return answer(201, { ok: true, action: rec.action, hostname, commandId: rec.id, status: rec.status, required: rec.proposal?.required ?? 0 });
    } catch (err) {
      if (!(err instanceof VaultMeshError) || (err.status >= 500 && err.status !== 503)) throw err;
      const status = ([400, 401, 403, 404, 409, 429, 503] as const).find((s) => s === err.status) ?? 400;
      return answer(status, { ok: false, code: err.code, message: err.message, status });
    }
  });

  // Center key rotation (admin): the same rotator as POST /api/keys/rotate, behind an explicit confirmation.
  app.post('/keys/rotate', async (c) => {
    const services = c.get('services');
    const htmx = c.req.header('hx-request') !== undefined;
    const answer = (status: 201 | 400 | 401 | 403 | 409 | 429 | 503, data: Record<string, unknown>) => {
      const html = renderer.partial('key-result', data);
      if (htmx) return c.html(html, status);
      return c.html(renderer.notice({ title: data.ok ? 'Center key rotated' : 'Center key not rotated', html, back: '/console' }), status);
    };
    try {
      const identity = operatorOf(c, SIGN_IN_FIRST); // a cookie without the CSRF token or from another site throws 403 here
      if (!hasScope(identity, 'admin')) throw new VaultMeshError('FORBIDDEN', 'rotating the center key needs the admin scope', { status: 403 });
      const form = await readForm(c);
      if (form.confirm !== 'yes') throw new VaultMeshError('CONFIRMATION_REQUIRED', 'tick "I confirm" to rotate the center key', { status: 400 });
      const from = keyIdSchema.safeParse(form.from_key_id);
      if (!from.success) throw new VaultMeshError('VALIDATION_ERROR', 'the form names no valid current key id: reload the console', { status: 400 });
      // The key the page showed: a second submit (or a stale page) after a rotation is refused, not a second rotation.
      const r = await services.centerKeyRotator.rotate({ author: identity.name, overlapSecs: services.config.centerKeyOverlapSecs, fromKeyId: from.data });
      const s = r.statement;
      return answer(201, { ok: true, from: s.old_key_id, to: s.new_key_id, serial: s.serial, overlapUntil: s.overlap_until });
    } catch (err) {
      if (!(err instanceof VaultMeshError) || (err.status >= 500 && err.status !== 503)) throw err;
      const status = ([400, 401, 403, 409, 429, 503] as const).find((s) => s === err.status) ?? 400;
      return answer(status, { ok: false, code: err.code, message: err.message, status });
    }
  });

  return app;
}
