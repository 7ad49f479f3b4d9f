/**
 * Outbound webhooks on attention transitions, incident events, node outages (offline, rejoin) and command proposals
 * (waiting for approvals, denied, expired): each committed envelope of those kinds becomes
 * one delivery per configured URL, HMAC-SHA256 signed, retried with exponential backoff, kept in a bounded outbox
 * file (rewritten atomically) so pending deliveries survive a restart. Delivery status is data for
 * `GET /api/webhooks`.
 */
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { canonicalJson } from '../../protocol/canonical-json.js';
import type { Envelope } from '../../protocol/envelope.js';
import type { EnvelopeKind } from '../../protocol/envelope-kinds.js';
import { writeFileAtomicSync } from '../../lib/atomic-file.js';
import { assertPrivateFile } from '../../lib/key-file.js';
import { realTimers, type Timers } from '../../lib/timers.js';

/** A node's outages (fleet/outages.ts): declared offline, and back. */
export const OUTAGE_WEBHOOK_KINDS: readonly EnvelopeKind[] = ['offline', 'rejoin'];

export const WEBHOOK_KINDS: ReadonlySet<string> = new Set<EnvelopeKind>(['attention', 'incident', 'ack', 'resolve', ...OUTAGE_WEBHOOK_KINDS]);

/**
 * `command` events that need a person: a proposal waiting for its approvers, and a proposal closed without being
 * signed. Delivered whatever maintenance window covers the target: approving is what such a window is for.
 */
export const PROPOSAL_WEBHOOK_EVENTS: ReadonlySet<string> = new Set(['proposed', 'denied', 'proposal_expired']);

export interface Delivery {
  id: string;
  url: string;
  kind: string;
  seq: number;
  /** The exact bytes signed and sent (canonical JSON of `{ envelope }`). */
  payload: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_at: number;
  last_error?: string;
  last_status?: number;
  delivered_at?: string;
}

export interface WebhookOptions {
  urls: string[];
  secret: string;
  outboxFile: string;
  fetch?: typeof globalThis.fetch;
  now?: () => Date;
  /** Outbox entries kept (delivered and failed ones are dropped first). */
  maxOutbox?: number;
  maxAttempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  timeoutMs?: number;
  /** Delivery loop period. */
  tickMs?: number;
  /** The delivery tick runs on these (fake ones in tests). */
  timers?: Timers;
  /** Maintenance windows (ops/maintenance.ts): what to hold back, and the one summary sent when a window ends. */
  maintenance?: WebhookMaintenance;
}

export interface WebhookMaintenance {
  /** The envelope is about a node a window covered at its time: no delivery (it is counted in the window). */
  isHeld(envelope: Envelope): boolean;
  /** For a window's `ended` envelope: what the summary delivery carries besides it (the window and its held counts). */
  summary(envelope: Envelope): Record<string, unknown> | undefined;
}

/** `sha256=<hex>` over `<timestamp>.<body>`: the receiver recomputes it with the shared secret. */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export interface Webhooks {
  onCommit(batch: ReadonlyArray<{ envelope: Envelope }>): void;
  /** Attempts every due delivery once; resolves when those attempts finished. */
  deliverDue(): Promise<void>;
  status(): { urls: string[]; pending: number; delivered: number; failed: number; dropped: number; held: number; items: Delivery[] };
  start(): void;
  stop(): Promise<void>;
}

export function createWebhooks(opts: WebhookOptions): Webhooks {
  const fetchFn = opts.fetch ?? globalThis.fetch;
  const now = opts.now ?? (() => new Date());
  const maxOutbox = opts.maxOutbox ?? 1000;
  const maxAttempts = opts.maxAttempts ?? 8;
  const base = opts.baseDelayMs ?? 1000;
  const maxDelay = opts.maxDelayMs ?? 5 * 60_000;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  let outbox: Delivery[] = existsSync(opts.outboxFile)
    ? readFileSync(opts.outboxFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Delivery)
    : [];
  let dropped = 0;
  /** Deliveries not queued because a maintenance window held them (since this process started). */
  let held = 0;
  const timers = opts.timers ?? realTimers;
  let timer: unknown;
  let running: Promise<void> | undefined;

  const persist = () => writeFileAtomicSync(opts.outboxFile, outbox.map((d) => JSON.stringify(d) + '\n').join(''), 0o600);
  const bound = () => {
    while (outbox.length > maxOutbox) {
      const i = outbox.findIndex((d) => d.status !== 'pending');
      outbox.splice(i === -1 ? 0 : i, 1);
      if (i === -1) dropped++;
    }
  };

  async function attempt(d: Delivery): Promise<void> {
    const ts = String(Math.floor(now().getTime() / 1000));
    d.attempts++;
    try {
      const res = await fetchFn(d.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-vaultmesh-delivery': d.id,
          'x-vaultmesh-event': d.kind,
          'x-vaultmesh-timestamp': ts,
          'x-vaultmesh-signature': signWebhook(opts.secret, ts, d.payload),
        },
        body: d.payload,
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      d.last_status = res.status;
      if (res.ok) {
        d.status = 'delivered';
        d.delivered_at = now().toISOString();
        delete d.last_error;
        return;
      }
      d.last_error = `HTTP ${res.status}`;
    } catch (err) {
      d.last_error = (err as Error).message.slice(0, 200);
    }
    if (d.attempts >= maxAttempts) d.status = 'failed';
    else d.next_at = now().getTime() + Math.min(maxDelay, base * 2 ** (d.attempts - 1));
  }

  const hooks: Webhooks = {
    onCommit(batch) {
      let added = false;
      for (const { envelope } of batch) {
        let extra: Record<string, unknown> | undefined;
        if (envelope.kind === 'maintenance') {
          extra = opts.maintenance?.summary(envelope);
          if (!extra) continue;
        } else if (envelope.kind === 'command') {
          if (!PROPOSAL_WEBHOOK_EVENTS.has(String(envelope.body.event))) continue;
        } else if (!WEBHOOK_KINDS.has(envelope.kind)) continue;
        else if (opts.maintenance?.isHeld(envelope)) {
          held++;
          continue;
        }
        const payload = canonicalJson({ envelope, ...extra });
        opts.urls.forEach((url, i) => {
          outbox.push({ id: `${envelope.id}.${i}`, url, kind: envelope.kind, seq: envelope.seq, payload, status: 'pending', attempts: 0, next_at: 0 });
          added = true;
        });
      }
      if (added) {
        bound();
        persist();
      }
    },
    async deliverDue() {
      const t = now().getTime();
      const due = outbox.filter((d) => d.status === 'pending' && d.next_at <= t);
      if (!due.length) return;
      await Promise.all(due.map(attempt));
      bound();
      persist();
    },
    status() {
      const count = (s: Delivery['status']) => outbox.filter((d) => d.status === s).length;
      return { urls: opts.urls, pending: count('pending'), delivered: count('delivered'), failed: count('failed'), dropped, held, items: outbox.slice(-100).reverse() };
    },
    start() {
      timer ??= timers.setInterval(() => {
        running ??= hooks.deliverDue().finally(() => (running = undefined));
      }, opts.tickMs ?? 1000);
    },
    async stop() {
      if (timer !== undefined) timers.clearInterval(timer);
      timer = undefined;
      await running;
    },
  };
  return hooks;
}

/** The HMAC key shared with receivers: created once (0600) in the state dir unless given in the config. */
export function loadOrCreateWebhookSecret(file: string, create: () => string): string {
  if (!existsSync(file)) writeFileAtomicSync(file, `${create()}\n`, 0o600);
  assertPrivateFile(file); // like the admin token and keys: a secret others can read is refused
  return readFileSync(file, 'utf8').trim();
}
