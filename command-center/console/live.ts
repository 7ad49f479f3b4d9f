/**
 * The console's live stream. One `ConsoleLive` per connection remembers what that browser shows (which rows, with
 * which status; which feed items; the last HTML of each small panel) and turns committed envelopes and the passing
 * of time into out-of-band fragments that patch only what changed. Every (re)connect starts with a full-state
 * fragment that replaces each panel wholesale, so a reconnect neither loses nor duplicates anything, whatever the
 * client missed (htmx's SSE extension pauses in background tabs and we do not resume from Last-Event-ID).
 *
 * Envelopes are coalesced: a burst of heartbeats from one node becomes one row update per tick (250 ms), so the
 * browser's work is bounded by the number of changed rows, not by the fleet's heartbeat rate.
 */
import type { Envelope } from '../../protocol/envelope.js';
import { formatSseMessage } from '../http/sse-format.js';
import { sseResponse } from '../routes/stream.js';
import type { StreamLease } from '../http/stream-lease.js';
import type { Services } from '../services.js';
import { buildPanels, describeContextOf, detailOf, ledgerRootOf, recentEnvelopes, type ConsoleSource, type PanelContext } from './panels.js';
import type { ConsoleRenderer } from './render.js';
import {
  attentionSummary,
  computeStatuses,
  feedItem,
  feedDomId,
  findingsBySeverity,
  isFeedEnvelope,
  matchesFilter,
  missionBar,
  nodeDomId,
  nodeRow,
  pendingEnrollments,
} from './view-model.js';

export const FEED_LIMIT = 50;

export interface LiveContext extends PanelContext {
  canApprove: boolean;
  csrf: string;
}

export class ConsoleLive {
  /** Rows the browser shows: node id → status last sent. */
  private readonly rows = new Map<string, string>();
  /** Feed items the browser shows, newest first. */
  private feedSeqs: number[] = [];
  private readonly sent = { bar: '', pending: '', attention: '', findings: '', detail: '' };
  /** Nodes touched by envelopes since the last flush → whether a heartbeat touched them (plays the glow). */
  private readonly dirty = new Map<string, boolean>();
  private newFeed: Envelope[] = [];
  private pendingDirty = false;
  private scansDirty = false;
  private lastScanMs = -Infinity;

  constructor(
    private readonly src: ConsoleSource,
    private readonly renderer: ConsoleRenderer,
    private readonly ctx: LiveContext,
    private readonly opts: { statusScanMs?: number } = {},
  ) {}

  /** Records a committed envelope (cheap: the work happens at the next flush). */
  note(env: Envelope): void {
    if (env.node_id) this.dirty.set(env.node_id, (this.dirty.get(env.node_id) ?? false) || env.kind === 'heartbeat');
    if (isFeedEnvelope(env)) {
      this.newFeed.push(env);
      if (this.newFeed.length > FEED_LIMIT) this.newFeed.shift();
    }
    if (env.kind === 'enrollment') this.pendingDirty = true;
    if (env.kind === 'scan') this.scansDirty = true;
  }

  /** Full state of every live panel as out-of-band swaps, and resets what this connection thinks the client has. */
  full(nowMs = this.src.now().getTime(), opts: { render?: boolean } = {}): string {
    const p = buildPanels(this.src, this.ctx, nowMs);
    const r = this.renderer;
    this.rows.clear();
    for (const row of p.rows) this.rows.set(row.id, row.pill.status);
    this.feedSeqs = p.feed.map((f) => f.seq);
    this.dirty.clear();
    this.newFeed = [];
    this.pendingDirty = this.scansDirty = false;
    this.lastScanMs = nowMs;
    this.sent.bar = r.partial('mission-bar', { bar: p.bar, oob: true });
    this.sent.pending = r.partial('pending', { pending: p.pending, csrf: this.ctx.csrf, canApprove: this.ctx.canApprove, oob: true });
    this.sent.attention = r.partial('attention', { a: p.attention, oob: true });
    this.sent.findings = r.partial('findings', { groups: p.findings, oob: true });
    this.sent.detail = r.partial('node-detail', { d: p.detail, oob: true });
    if (opts.render === false) return '';
    return [
      this.sent.bar,
      this.sent.pending,
      r.partial('node-list', { rows: p.rows, oob: true }),
      this.sent.detail,
      this.sent.attention,
      this.sent.findings,
      r.partial('feed', { items: p.feed, oob: true }),
    ].join('\n');
  }

  /**
   * Adopts what a page rendered at `renderedAtMs` shows without sending it again (the page and its stream are a
   * few milliseconds apart); the next flush sends whatever changed since. Only valid when no envelope was
   * committed in between, which the caller checks with the page's seq.
   */
  adopt(renderedAtMs: number): void {
    this.full(renderedAtMs, { render: false });
  }

  /** Out-of-band fragments for everything that changed since the last flush, or '' when nothing did. */
  flush(nowMs = this.src.now().getTime()): string {
    const scanDue = nowMs - this.lastScanMs >= (this.opts.statusScanMs ?? 1000);
    if (!this.dirty.size && !this.newFeed.length && !this.pendingDirty && !scanDue) return '';
    this.lastScanMs = nowMs;
    const { state, statusPolicy } = this.src;
    const r = this.renderer;
    const statuses = computeStatuses(state, nowMs, statusPolicy);
    const out: string[] = [];
    const appended: string[] = [];
    let statusChanged = false;
    const hadRows = this.rows.size > 0;

    for (const node of state.nodes.values()) {
      const id = node.node_id;
      const status = statuses.get(id)!;
      const shown = this.rows.get(id);
      const wanted = matchesFilter(node, status, this.ctx.filter);
      const touched = this.dirty.get(id);
      if (shown !== undefined && shown !== status) statusChanged = true;
      if (wanted && shown === undefined) {
        appended.push(r.partial('node-row', { r: nodeRow(node, status, { filter: this.ctx.filter, selected: this.ctx.selected, glow: touched === true }), oob: false }));
        this.rows.set(id, status);
        statusChanged = true;
      } else if (!wanted && shown !== undefined) {
        out.push(`<li id="${nodeDomId(id)}" hx-swap-oob="delete"></li>`);
        this.rows.delete(id);
      } else if (wanted && (touched !== undefined || shown !== status)) {
        out.push(r.partial('node-row', { r: nodeRow(node, status, { filter: this.ctx.filter, selected: this.ctx.selected, glow: touched === true }), oob: true }));
        this.rows.set(id, status);
      }
    }
    if (appended.length) {
      if (!hadRows) out.push('<li id="node-list-empty" hx-swap-oob="delete"></li>');
      // `beforeend` strips the wrapper and appends its children: new rows land at the end of the list.
      out.push(`<div hx-swap-oob="beforeend:#node-list">${appended.join('')}</div>`);
    }

    const bar = r.partial('mission-bar', { bar: missionBar(statuses, { seq: state.lastSeq, nowMs, startedAtMs: this.src.startedAt.getTime(), ledger: ledgerRootOf(this.src) }), oob: true });
    if (bar !== this.sent.bar) out.push((this.sent.bar = bar));

    if (this.pendingDirty) {
      const html = r.partial('pending', { pending: pendingEnrollments(state), csrf: this.ctx.csrf, canApprove: this.ctx.canApprove, oob: true });
      if (html !== this.sent.pending) out.push((this.sent.pending = html));
    }

    const recent = this.dirty.size || this.scansDirty || this.newFeed.length ? recentEnvelopes(this.src) : undefined;
    if (statusChanged || this.dirty.size || scanDue) {
      const html = r.partial('attention', { a: attentionSummary(state, statuses, { nowMs, policy: statusPolicy, filter: this.ctx.filter }), oob: true });
      if (html !== this.sent.attention) out.push((this.sent.attention = html));
    }
    if (this.scansDirty) {
      const html = r.partial('findings', { groups: findingsBySeverity(state, this.ctx.filter), oob: true });
      if (html !== this.sent.findings) out.push((this.sent.findings = html));
    }

    const sel = this.ctx.selected ? state.nodes.get(this.ctx.selected) : undefined;
    if (sel && (this.dirty.has(sel.node_id) || scanDue)) {
      const d = detailOf(this.src, sel, statuses.get(sel.node_id)!, nowMs, recent ?? recentEnvelopes(this.src));
      const html = r.partial('node-detail', { d, oob: true });
      if (html !== this.sent.detail) out.push((this.sent.detail = html));
    }

    if (this.newFeed.length) {
      const fresh = this.newFeed.filter((e) => !this.feedSeqs.includes(e.seq)).reverse(); // newest first
      const describe = describeContextOf(this.src);
      if (fresh.length) {
        out.push(`<div hx-swap-oob="afterbegin:#feed">${fresh.map((e) => r.partial('feed-item', { e: feedItem(e, this.ctx.filter, describe) })).join('')}</div>`);
        this.feedSeqs = [...fresh.map((e) => e.seq), ...this.feedSeqs];
        for (const seq of this.feedSeqs.splice(FEED_LIMIT)) out.push(`<li id="${feedDomId(seq)}" hx-swap-oob="delete"></li>`);
      }
    }

    this.dirty.clear();
    this.newFeed = [];
    this.pendingDirty = this.scansDirty = false;
    return out.join('\n');
  }

  /** Rows this connection believes the browser shows (tests and the duplicate check). */
  shownRows(): ReadonlyMap<string, string> {
    return this.rows;
  }
}

/**
 * `GET /console/stream`: the event bus through `sseResponse` (which owns subscription, keepalive, metrics and
 * cleanup), with each envelope only noted, and a ticker that writes coalesced fragments. The subscription is made
 * before the full-state fragment is rendered, in the same tick, so no envelope falls between the two.
 */
export function consoleStreamResponse(
  services: Services,
  live: ConsoleLive,
  opts: { first: 'full' | { adoptAtMs: number }; keepaliveMs: number; checkMs?: number; lease?: StreamLease; tickMs?: number; onError?: (err: unknown) => void },
): Response {
  // The inner stream checks the lease before each envelope and while idle, and ends with `event: end`; the ticks
  // below check it too, so nothing rendered after the credential ended reaches the browser.
  const inner = sseResponse(services, {
    keepaliveMs: opts.keepaliveMs,
    ...(opts.checkMs !== undefined ? { checkMs: opts.checkMs } : {}),
    ...(opts.lease ? { lease: opts.lease } : {}),
    render: (env) => {
      live.note(env);
      return '';
    },
    prelude: () => {
      if (opts.first === 'full') return formatSseMessage({ data: live.full() });
      live.adopt(opts.first.adoptAtMs);
      return '';
    },
  });
  const reader = inner.body!.getReader();
  const encoder = new TextEncoder();
  let timer: NodeJS.Timeout | undefined;
  let finished = false;
  const body = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        const stop = () => {
          if (finished) return;
          finished = true;
          clearInterval(timer);
          controller.close();
        };
        const tick = () => {
          if (finished) return;
          // A client that stops reading gets nothing more queued; its changes stay coalesced in `live` (bounded by
          // the fleet size) until it catches up.
          if ((controller.desiredSize ?? 0) <= 0) return;
          if (opts.lease?.()) return; // the inner stream is about to end with the reason
          try {
            const html = live.flush();
            if (html) controller.enqueue(encoder.encode(formatSseMessage({ data: html })));
          } catch (err) {
            (opts.onError ?? ((e) => console.error('console stream:', e)))(err);
            stop();
            void reader.cancel();
          }
        };
        timer = setInterval(tick, opts.tickMs ?? 250);
        // Forward what sseResponse writes (hello, full state, keepalives); envelopes render to nothing.
        void (async () => {
          try {
            for (;;) {
              const { done, value } = await reader.read();
              if (done || finished) break;
              if (value.byteLength) controller.enqueue(value);
            }
          } catch (err) {
            // The inner stream errors only when it was cancelled underneath us; either way this stream ends.
            if (!finished) (opts.onError ?? (() => undefined))(err);
          }
          stop();
        })();
      },
      cancel() {
        finished = true;
        clearInterval(timer);
        return reader.cancel();
      },
    },
    new CountQueuingStrategy({ highWaterMark: 16 }),
  );
  return new Response(body, { headers: inner.headers });
}
