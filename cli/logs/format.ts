/**
 * Rendering of journal entries for `vaultmesh logs view|tail`: one aligned human line per envelope
 * (`ts  seq  kind  node  author  summary`, ANSI colour only when asked), or the journal line itself for --json.
 * Pure: decisions about TTYs and NO_COLOR are made by the caller.
 */
import type { Envelope } from '../../protocol/envelope.js';
import { envelopeSeverityRank } from './filters.js';
import { sanitize } from '../terminal-text.js';

export interface FormatOptions {
  colour: boolean;
}

const ESC = '\u001b[';
const paint = (code: string, text: string): string => `${ESC}${code}m${text}${ESC}0m`;
const DIM = '2';
const KIND_COLOURS: Readonly<Record<string, string>> = {
  heartbeat: '90',
  scan: '36',
  command: '35',
  receipt: '35',
  incident: '31',
  attention: '33',
  enrollment: '32',
  note: '34',
};
// Indexed by severity rank (info..critical).
const SEVERITY_COLOURS = ['', '34', '33', '31', '1;31'] as const;

const WIDTH = { ts: 24, seq: 8, kind: 10, node: 16, author: 16 } as const;
const SUMMARY_MAX = 160;

// Journal text comes from agents and bots: shown through the CLI's one sanitiser (cli/terminal-text.ts).
export { sanitize };

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : typeof v === 'number' ? String(v) : undefined);

function round(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2);
}

/** A few numeric metrics as `k=v`, preferring the ones an operator scans for first. */
function metricsSummary(metrics: unknown): string {
  if (!isRecord(metrics)) return '';
  const preferred = ['cpu', 'cpu_pct', 'cpu_percent', 'mem', 'mem_pct', 'mem_used_pct', 'memory_percent', 'load1', 'load', 'disk', 'disk_pct', 'disk_used_pct'];
  const keys = [...preferred.filter((k) => k in metrics), ...Object.keys(metrics).filter((k) => !preferred.includes(k))];
  const parts: string[] = [];
  for (const k of keys) {
    const v = metrics[k];
    if (typeof v === 'number' && Number.isFinite(v)) parts.push(`${k}=${round(v)}`);
    if (parts.length === 4) break;
  }
  return parts.join(' ');
}

const SEVERITY_ORDER = ['critical', 'high', 'medium', 'low', 'info'] as const;

function scanSummary(body: Record<string, unknown>): string {
  const findings = Array.isArray(body.findings) ? body.findings.filter(isRecord) : [];
  if (findings.length === 0) return str(body.summary) ?? 'no findings';
  const counts = new Map<string, number>();
  for (const f of findings) {
    const sev = str(f.severity) ?? 'unknown';
    counts.set(sev, (counts.get(sev) ?? 0) + 1);
  }
  const bySeverity = [...SEVERITY_ORDER, 'unknown']
    .filter((s) => counts.has(s))
    .map((s) => `${counts.get(s)} ${s}`)
    .join(', ');
  // The worst finding's title tells the operator what to look at first.
  let worst = findings[0]!;
  for (const f of findings) if (rankOf(f.severity) > rankOf(worst.severity)) worst = f;
  const title = str(worst.title) ?? str(worst.check);
  return `${findings.length} finding${findings.length === 1 ? '' : 's'} (${bySeverity})${title ? `: ${title}` : ''}`;
}

function rankOf(sev: unknown): number {
  const i = SEVERITY_ORDER.indexOf(sev as (typeof SEVERITY_ORDER)[number]);
  return i === -1 ? -1 : SEVERITY_ORDER.length - 1 - i;
}

function commandSummary(body: Record<string, unknown>): string {
  const signed = isRecord(body.signed) ? body.signed : undefined;
  const payload = signed && isRecord(signed.payload) ? signed.payload : isRecord(body.payload) ? body.payload : body;
  const parts: string[] = [];
  const action = str(payload.action);
  if (action) parts.push(action);
  const id = str(payload.id);
  if (id) parts.push(`id=${id}`);
  const status = str(body.status);
  if (status) parts.push(`status=${status}`);
  return parts.join(' ') || compactBody(body);
}

function receiptSummary(body: Record<string, unknown>): string {
  const parts: string[] = [];
  const status = str(body.status);
  if (status) parts.push(status);
  const id = str(body.command_id);
  if (id) parts.push(`command=${id}`);
  const detail = str(body.error) ?? str(body.message) ?? str(body.reason);
  if (detail) parts.push(detail);
  return parts.join(' ') || compactBody(body);
}

function textSummary(body: Record<string, unknown>): string {
  const parts: string[] = [];
  const sev = str(body.severity);
  if (sev) parts.push(`[${sev}]`);
  const text = str(body.title) ?? str(body.text) ?? str(body.message) ?? str(body.reason) ?? str(body.summary);
  if (text) parts.push(text);
  return parts.length ? parts.join(' ') : compactBody(body);
}

function compactBody(body: Record<string, unknown>): string {
  const json = JSON.stringify(body);
  return json === '{}' ? '' : json;
}

/** One-line gist of an envelope body, per kind; never throws on an unexpected body shape. */
export function summarize(env: Envelope): string {
  const body = isRecord(env.body) ? env.body : {};
  switch (env.kind) {
    case 'heartbeat': {
      const host = str(body.hostname);
      const metrics = metricsSummary(body.metrics);
      return [host, metrics].filter(Boolean).join(' ') || compactBody(body);
    }
    case 'scan':
      return scanSummary(body);
    case 'command':
      return commandSummary(body);
    case 'receipt':
      return receiptSummary(body);
    default:
      return textSummary(body);
  }
}

/** The aligned human line for an envelope, without a trailing newline. */
export function formatHuman(env: Envelope, opts: FormatOptions): string {
  const ts = sanitize(env.ts).padEnd(WIDTH.ts);
  const seq = String(env.seq).padStart(WIDTH.seq);
  const kind = sanitize(env.kind).padEnd(WIDTH.kind);
  const node = sanitize(env.node_id ?? '-').padEnd(WIDTH.node);
  const author = sanitize(env.author).padEnd(WIDTH.author);
  const summary = truncate(sanitize(summarize(env)), SUMMARY_MAX);
  if (!opts.colour) return `${ts}  ${seq}  ${kind}  ${node}  ${author}  ${summary}`.trimEnd();
  const kindColour = KIND_COLOURS[env.kind];
  const sevColour = SEVERITY_COLOURS[envelopeSeverityRank(env)] ?? '';
  return (
    `${paint(DIM, ts)}  ${seq}  ${kindColour ? paint(kindColour, kind) : kind}  ${node}  ${paint(DIM, author)}  ` +
    (sevColour && summary ? paint(sevColour, summary) : summary)
  ).trimEnd();
}
