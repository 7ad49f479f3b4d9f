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
import { nextTurn } from '../../lib/next-turn.js';
import { sseResponse } from '../routes/stream.js';
import type { StreamLease } from '../http/stream-lease.js';
import type { Services } from '../services.js';
import { nodeStatus } from '../fleet/node-status.js';
import { fleetSnapshot, sharedFleetSnapshotInTurns, type FleetSnapshot } from './fleet-snapshot.js';
import { buildPanels, overviewOf, describeContextOf, detailOf, FEED_LIMIT, ledgerRootOf, mergeEnvelopes, recentEnvelopes, viewOf, type ConsoleSource, type PanelContext } from './panels.js';
import type { ConsoleRenderer } from './render.js';
import { proposalsAwaiting } from './proposals.js';
import { maintenanceBadge } from './maintenance-view.js';
import {
  attentionSummary,
  feedItem,
  feedDomId,
  findingsBySeverity,
  isFeedEnvelope,
  missionBar,
  nodePage,
  nodeRow,
  pendingEnrollments,
  viewQuery,
  type ListView,
} from './view-model.js';

export { FEED_LIMIT };

/** Events of the selected node kept for its timeline beyond the bus's window (the log page plus what arrived since). */
const NODE_HISTORY_LIMIT = 200;

export interface LiveContext extends PanelContext {
  canApprove: boolean;
  csrf: string;
  /** May approve or deny proposed commands (commands:write), and as whom (their own proposals cannot be approved). */
  canDecide?: boolean;
  me?: string;
}

/** `command` events that change the proposals panel. */
const PROPOSAL_EVENTS: ReadonlySet<unknown> = new Set(['proposed', 'approved', 'denied', 'proposal_expired', 'issued']);

export class ConsoleLive {
  /** Rows the browser shows (the current page only): node id → status last sent. */
  private readonly rows = new Map<string, string>();
  /** The shown page's identity: its ids in order, the total and the page number; a change re-sends the list. */
  private listSig = '';
  /** Feed items the browser shows, newest first. */
  private feedSeqs: number[] = [];
  private readonly sent = { bar: '', pending: '', proposals: '', attention: '', findings: '', detail: '' };
  /** Shown nodes touched by envelopes since the last flush → whether a heartbeat touched them (plays the glow). */
  private readonly dirty = new Map<string, boolean>();
  private newFeed: Envelope[] = [];
  private nodeHistory: Envelope[] = [];
  private pendingDirty = false;
  private proposalsDirty = false;
  private scansDirty = false;
  /** A node enrolled or changed enrollment: the page's membership is recomputed at the next flush, not the next scan. */
  private membershipDirty = false;
  private lastScanMs = -Infinity;
  /** While `begin` makes its snapshot: nodes noted meanwhile, whose rows it sends again at the next flush. */
  private beginning: Set<string> | undefined;
  private readonly view: ListView;

  constructor(
    private readonly src: ConsoleSource,
    private readonly renderer: ConsoleRenderer,
    private readonly ctx: LiveContext,
    private readonly opts: { statusScanMs?: number } = {},
  ) {
    this.view = viewOf(ctx);
    this.nodeHistory = [...(ctx.history?.node ?? [])];
  }

  /**
   * Records a committed envelope (cheap: the work happens at the next flush). Envelopes about nodes this client
   * does not show cost a map lookup and nothing more: at 10,000 nodes almost every heartbeat is one of those.
   */
  note(env: Envelope): void {
    const id = env.node_id;
    if (id && this.beginning) this.beginning.add(id);
    if (id && (this.rows.has(id) || id === this.ctx.selected)) this.dirty.set(id, (this.dirty.get(id) ?? false) || env.kind === 'heartbeat');
    if (isFeedEnvelope(env)) {
      this.newFeed.push(env);
      if (this.newFeed.length > FEED_LIMIT) this.newFeed.shift();
      if (id && id === this.ctx.selected) {
        this.nodeHistory.push(env);
        if (this.nodeHistory.length > NODE_HISTORY_LIMIT) this.nodeHistory.shift();
      }
    }
    if (env.kind === 'enrollment') this.pendingDirty = this.membershipDirty = true;
    if (env.kind === 'command' && PROPOSAL_EVENTS.has((env.body as { event?: unknown }).event)) this.proposalsDirty = true;
    // A profile or tag window names no node: every shown row (and the selected node) may have gained or lost its badge.
    if (env.kind === 'maintenance') {
      for (const shown of this.rows.keys()) if (!this.dirty.has(shown)) this.dirty.set(shown, false);
      if (this.ctx.selected && !this.dirty.has(this.ctx.selected)) this.dirty.set(this.ctx.selected, false);
    }
    if (env.kind === 'scan') this.scansDirty = true;
  }

  private proposalsHtml(nowMs: number): string {
    return this.renderer.partial('proposals', { proposals: proposalsAwaiting(this.src.state, nowMs), csrf: this.ctx.csrf, canDecide: this.ctx.canDecide === true, me: this.ctx.me ?? '', oob: true });
  }

  private listHtml(page: ReturnType<typeof nodePage>): string {
    this.rows.clear();
    for (const row of page.rows) this.rows.set(row.id, row.pill.status);
    this.listSig = `${page.rows.map((r) => r.id).join(',')}|${page.total}|${page.page}|${page.pages}`;
    return this.renderer.partial('node-list', { list: page, oob: true });
  }

  /** The mission bar from a snapshot, rendered once per snapshot and ledger state for every client. */
  private barHtml(snap: FleetSnapshot, nowMs: number): string {
    const ledger = ledgerRootOf(this.src);
    return snap.memo(`bar:${JSON.stringify(ledger ?? null)}`, () =>
      this.renderer.partial('mission-bar', { bar: missionBar(snap.statuses, { seq: snap.seq, nowMs, startedAtMs: this.src.startedAt.getTime(), ledger }), oob: true }),
    );
  }

  /** The attention panel; its links keep the list's view, so clients with the same view share one rendering. */
  private attentionHtml(snap: FleetSnapshot): string {
    return snap.memo(`attention:${viewQuery(this.view)}`, () =>
      this.renderer.partial('attention', { a: attentionSummary(this.src.state, snap.statuses, { nowMs: snap.atMs, policy: this.src.statusPolicy, filter: this.view }), oob: true }),
    );
  }

  /** Full state of every live panel as out-of-band swaps, and resets what this connection thinks the client has. */
  full(nowMs = this.src.now().getTime(), opts: { render?: boolean; snap?: FleetSnapshot } = {}): string {
    const snap = opts.snap ?? fleetSnapshot(this.src, nowMs);
    const p = buildPanels(this.src, { ...this.ctx, history: { feed: this.ctx.history?.feed ?? [], node: this.nodeHistory, nodeOlder: this.ctx.history?.nodeOlder } }, nowMs, snap);
    const r = this.renderer;
    const list = this.listHtml(p.list);
    this.feedSeqs = p.feed.map((f) => f.seq);
    this.dirty.clear();
    this.newFeed = [];
    this.pendingDirty = this.scansDirty = this.membershipDirty = false;
    this.lastScanMs = nowMs;
    this.sent.bar = r.partial('mission-bar', { bar: p.bar, oob: true });
    this.sent.pending = r.partial('pending', { pending: p.pending, csrf: this.ctx.csrf, canApprove: this.ctx.canApprove, oob: true });
    this.proposalsDirty = false;
    this.sent.proposals = this.proposalsHtml(nowMs);
    this.sent.attention = r.partial('attention', { a: p.attention, oob: true });
    this.sent.findings = r.partial('findings', { groups: p.findings, oob: true });
    this.sent.detail = r.partial('node-detail', { d: p.detail, o: p.overview, oob: true, csrf: this.ctx.csrf });
    if (opts.render === false) return '';
    return [
      this.sent.bar,
      this.sent.pending,
      this.sent.proposals,
      list,
      this.sent.detail,
      this.sent.attention,
      this.sent.findings,
      r.partial('feed', { items: p.feed, older: p.feedOlder, oob: true }),
    ].join('\n');
  }

  /**
   * A stream's first state without one long turn: `full()` over a shared snapshot made in turns
   * (`sharedFleetSnapshotInTurns`), up to half a status scan old. With `{ adoptAtMs }` it adopts what a page rendered
   * at that moment shows without sending it again (the page and its stream are a few milliseconds apart; only valid
   * when no envelope was committed in between, which the caller checks with the page's seq), and returns ''.
   * Envelopes committed while it is made are noted as they come, and the rows they touch are sent again at the next
   * flush, so a status or figure that changed meanwhile is not left behind.
   */
  async begin(first: 'full' | { adoptAtMs: number }, yieldTurn: () => Promise<void>): Promise<string> {
    const nowMs = first === 'full' ? this.src.now().getTime() : first.adoptAtMs;
    const noted = (this.beginning = new Set<string>());
    let snap: FleetSnapshot;
    try {
      snap = await sharedFleetSnapshotInTurns(this.src, nowMs, (this.opts.statusScanMs ?? 1000) / 2, this.view.sort, yieldTurn);
      await yieldTurn(); // the snapshot's last turn sorted the fleet: the panels get a turn of their own
    } finally {
      this.beginning = undefined;
    }
    const html = this.full(nowMs, { render: first === 'full', snap });
    for (const id of noted) if (this.rows.has(id) || id === this.ctx.selected) this.dirty.set(id, false);
    return html;
  }

  /**
   * Out-of-band fragments for everything that changed since the last flush, or '' when nothing did. Rows this
   * client shows are patched at every tick; which rows it shows (the page's membership and order), the KPIs and
   * the attention panel follow the clock once per status scan (default 1 s), from a fleet snapshot shared by all
   * clients, so a client's cost does not grow with the fleet's heartbeat rate.
   */
  flush(nowMs = this.src.now().getTime()): string {
    const scanMs = this.opts.statusScanMs ?? 1000;
    const scanDue = nowMs - this.lastScanMs >= scanMs;
    if (!this.dirty.size && !this.newFeed.length && !this.pendingDirty && !this.proposalsDirty && !this.scansDirty && !this.membershipDirty && !scanDue) return '';
    if (scanDue) this.lastScanMs = nowMs;
    const { state, statusPolicy } = this.src;
    const r = this.renderer;
    const out: string[] = [];
    const rendered = new Set<string>();
    const rowHtml = (id: string, glow: boolean) => {
      const node = state.nodes.get(id);
      if (!node) return;
      const status = nodeStatus(node, nowMs, statusPolicy);
      out.push(r.partial('node-row', { r: nodeRow(node, status, { filter: this.view, selected: this.ctx.selected, glow, maint: maintenanceBadge(state, node, nowMs) }), oob: true }));
      this.rows.set(id, status);
      rendered.add(id);
    };

    let snap: FleetSnapshot | undefined;
    if (scanDue || this.membershipDirty || this.scansDirty) {
      // A new or re-decided node needs an exact snapshot to appear now; otherwise one up to half a scan old will do
      // (shared with every client scanning in that half second), so the KPIs lag by at most 1.5 scans.
      snap = fleetSnapshot(this.src, nowMs, this.membershipDirty ? 0 : scanMs / 2);
    }
    if (snap && (scanDue || this.membershipDirty)) {
      const page = nodePage(snap.sorted(this.view.sort), snap.statuses, this.view, this.ctx.selected, (n) => maintenanceBadge(state, n, nowMs));
      const sig = `${page.rows.map((x) => x.id).join(',')}|${page.total}|${page.page}|${page.pages}`;
      if (sig !== this.listSig) {
        out.push(this.listHtml(page));
        for (const row of page.rows) rendered.add(row.id);
      } else {
        // Same rows in the same order: patch those whose status moved with the clock.
        for (const row of page.rows) if (this.rows.get(row.id) !== nodeStatus(state.nodes.get(row.id)!, nowMs, statusPolicy)) rowHtml(row.id, this.dirty.get(row.id) === true);
      }
    }
    for (const [id, glow] of this.dirty) if (this.rows.has(id) && !rendered.has(id)) rowHtml(id, glow);

    if (snap && (scanDue || this.scansDirty || this.membershipDirty)) {
      const bar = this.barHtml(snap, nowMs);
      if (bar !== this.sent.bar) out.push((this.sent.bar = bar));
      const att = this.attentionHtml(snap);
      if (att !== this.sent.attention) out.push((this.sent.attention = att));
    }

    if (this.pendingDirty) {
      const html = r.partial('pending', { pending: pendingEnrollments(state), csrf: this.ctx.csrf, canApprove: this.ctx.canApprove, oob: true });
      if (html !== this.sent.pending) out.push((this.sent.pending = html));
    }

    // Also once per scan: a proposal that lapsed leaves the list before the sweep journals it.
    if (this.proposalsDirty || (scanDue && state.commands.proposals.size)) {
      this.proposalsDirty = false;
      const html = this.proposalsHtml(nowMs);
      if (html !== this.sent.proposals) out.push((this.sent.proposals = html));
    }

    if (this.scansDirty) {
      const html = r.partial('findings', { groups: findingsBySeverity(state, this.view), oob: true });
      if (html !== this.sent.findings) out.push((this.sent.findings = html));
    }

    const sel = this.ctx.selected ? state.nodes.get(this.ctx.selected) : undefined;
    if (sel && (this.dirty.has(sel.node_id) || scanDue)) {
      const d = detailOf(this.src, sel, nodeStatus(sel, nowMs, statusPolicy), nowMs, mergeEnvelopes(recentEnvelopes(this.src), this.nodeHistory), this.ctx.history?.nodeOlder);
      const html = r.partial('node-detail', { d, oob: true, csrf: this.ctx.csrf });
      if (html !== this.sent.detail) out.push((this.sent.detail = html));
    } else if (!sel && snap && (scanDue || this.newFeed.length)) {
      // The fleet overview (no node selected) follows the KPIs' cadence.
      const ledger = ledgerRootOf(this.src);
      const html = snap.memo(`overview:${viewQuery(this.view)}:${state.commands.byId.size}:${JSON.stringify(ledger ?? null)}`, () => {
        const bar = missionBar(snap!.statuses, { seq: snap!.seq, nowMs, startedAtMs: this.src.startedAt.getTime(), ledger });
        return r.partial('node-detail', { d: undefined, o: buildOverview(this.src, snap!, bar, this.view), oob: true });
      });
      if (html !== this.sent.detail) out.push((this.sent.detail = html));
    }

    if (this.newFeed.length) {
      const fresh = this.newFeed.filter((e) => !this.feedSeqs.includes(e.seq)).reverse(); // newest first
      const describe = describeContextOf(this.src);
      if (fresh.length) {
        out.push(`<div hx-swap-oob="afterbegin:#feed">${fresh.map((e) => r.partial('feed-item', { e: feedItem(e, this.view, describe) })).join('')}</div>`);
        this.feedSeqs = [...fresh.map((e) => e.seq), ...this.feedSeqs];
        for (const seq of this.feedSeqs.splice(FEED_LIMIT)) out.push(`<li id="${feedDomId(seq)}" hx-swap-oob="delete"></li>`);
      }
    }

    this.dirty.clear();
    this.newFeed = [];
    this.pendingDirty = this.scansDirty = this.membershipDirty = false;
    return out.join('\n');
  }

  /** Rows this connection believes the browser shows (tests and the duplicate check). */
  shownRows(): ReadonlyMap<string, string> {
    return this.rows;
  }
}

function buildOverview(src: ConsoleSource, snap: FleetSnapshot, bar: ReturnType<typeof missionBar>, view: ListView) {
  const attention = attentionSummary(src.state, snap.statuses, { nowMs: snap.atMs, policy: src.statusPolicy, filter: view });
  return overviewOf(src, bar, attention, view);
}

/**
 * `GET /console/stream`: the event bus through `sseResponse` (which owns subscription, keepalive, metrics and
 * cleanup), with each envelope only noted, and a ticker that writes coalesced fragments. The subscription is made
 * first; the first state (`ConsoleLive.begin`) follows the stream's opening bytes, and no tick is written before
 * it, so no envelope falls between the two: those committed while it is made are in it or are sent after it.
 */
export function consoleStreamResponse(
  services: Services,
  live: ConsoleLive,
  opts: {
    first: 'full' | { adoptAtMs: number };
    keepaliveMs: number;
    checkMs?: number;
    lease?: StreamLease;
    tickMs?: number;
    onError?: (err: unknown) => void;
    /** How the first state gives way to requests while it is made (default: the next turn of the event loop). */
    yieldTurn?: () => Promise<void>;
  },
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
  });
  const reader = inner.body!.getReader();
  const encoder = new TextEncoder();
  let timer: NodeJS.Timeout | undefined;
  let finished = false;
  let beginning = false;
  let begun = false;
  const body = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        const stop = () => {
          if (finished) return;
          finished = true;
          clearInterval(timer);
          controller.close();
        };
        const fail = (err: unknown) => {
          (opts.onError ?? ((e) => console.error('console stream:', e)))(err);
          stop();
          void reader.cancel();
        };
        const begin = async () => {
          try {
            const html = await live.begin(opts.first, opts.yieldTurn ?? nextTurn);
            if (finished || opts.lease?.()) return; // ended meanwhile; the inner stream says why
            if (html) controller.enqueue(encoder.encode(formatSseMessage({ data: html })));
            begun = true;
          } catch (err) {
            fail(err);
          }
        };
        const tick = () => {
          if (finished || !begun) return;
          // A client that stops reading gets nothing more queued; its changes stay coalesced in `live` (bounded by
          // the fleet size) until it catches up.
          if ((controller.desiredSize ?? 0) <= 0) return;
          if (opts.lease?.()) return; // the inner stream is about to end with the reason
          try {
            const html = live.flush();
            if (html) controller.enqueue(encoder.encode(formatSseMessage({ data: html })));
          } catch (err) {
            fail(err);
          }
        };
        timer = setInterval(tick, opts.tickMs ?? 250);
        // Forward what sseResponse writes (its opening bytes, keepalives); envelopes render to nothing. The first
        // state is begun once the opening bytes are through, so it follows them.
        void (async () => {
          try {
            for (;;) {
              const { done, value } = await reader.read();
              if (done || finished) break;
              if (value.byteLength) controller.enqueue(value);
              if (!beginning) {
                beginning = true;
                void begin();
              }
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
