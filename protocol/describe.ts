/**
 * One human line per envelope, for the console's feed and timelines and for `vaultmesh logs view`. Pure, and it
 * never throws. Unlike the reducers, it checks the body against its kind's schema (`parseEnvelope`): what it reads
 * may be a copied or hand-edited journal, and it runs once per line shown, not once per line replayed. A body that
 * does not fit its kind (or a kind this version does not know) is shown as compact JSON.
 * The text is plain: callers escape it for HTML or make control characters visible for a terminal.
 */
import type { Envelope } from './envelope.js';
import { parseEnvelope, type EnvelopeOf } from './envelope-kinds.js';
import { SEVERITIES, severityRankOf, type Finding } from './scan.js';
import { describeTarget } from './maintenance.js';

/** What describing may look up: the action of a command by id (only its `issued` envelope names it). */
export interface DescribeContext {
  actionOf?: (commandId: string) => string | undefined;
}

const PAST: Readonly<Record<string, string>> = { approve: 'approved', reject: 'rejected', revoke: 'revoked', create: 'created' };
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function pct(used: number, total: number): string {
  return total > 0 ? `${Math.round((used / total) * 100)}%` : '?';
}

/** `3d 4h`, `2h 5m`, `4m 10s`, `12s`. */
export function shortDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

function heartbeat(env: EnvelopeOf<'heartbeat'>): string {
  const b = env.body;
  const m = b.metrics;
  const parts = [`load ${m.load[0].toFixed(2)}`, `mem ${pct(m.mem_used_bytes, m.mem_total_bytes)}`, `disk ${pct(m.disk_used_bytes, m.disk_total_bytes)}`, `up ${shortDuration(m.uptime_s)}`];
  if (!b.services_ok) {
    const failing = Object.entries(b.services ?? {}).filter(([, st]) => st !== 'active').map(([unit, st]) => `${unit} ${st}`);
    parts.push(`services not OK${failing.length ? ` (${failing.slice(0, 3).join(', ')})` : ''}`);
  }
  if (!b.cloudflare_ok) parts.push('tunnel DOWN');
  return `heartbeat from ${b.hostname}: ${parts.join(', ')}`;
}

function scan(env: EnvelopeOf<'scan'>): string {
  const findings: readonly Finding[] = env.body.findings;
  if (!findings.length) return `scan (${env.body.trigger}): no findings`;
  const s = env.body.summary;
  const counts = SEVERITIES.filter((sev) => s[sev] > 0).map((sev) => `${s[sev]} ${sev}`).join(', ');
  // The worst finding's title tells the operator what to look at first.
  let worst = findings[0]!;
  for (const f of findings) if (severityRankOf(f.severity) > severityRankOf(worst.severity)) worst = f;
  return `scan (${env.body.trigger}): ${plural(findings.length, 'finding')} (${counts}); worst: ${worst.title}`;
}

function argsText(args: Readonly<Record<string, unknown>>): string {
  return Object.entries(args).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
}

function command(env: EnvelopeOf<'command'>, ctx: DescribeContext): string {
  const b = env.body;
  const action = (b.event === 'issued' || b.event === 'proposed' ? b.action : ctx.actionOf?.(b.command_id)) ?? b.command_id;
  switch (b.event) {
    case 'issued': {
      const args = argsText(b.signed.payload.args);
      if (b.approvals) {
        return `command ${action}${args ? ` (${args})` : ''} approved by ${b.approvals.map((a) => a.by).join(', ')} and signed (proposed by ${b.proposed_by ?? 'unknown'}), expires ${b.signed.payload.expires_at}`;
      }
      return `command ${action}${args ? ` (${args})` : ''} issued by ${env.author}, expires ${b.signed.payload.expires_at}`;
    }
    case 'proposed': {
      const args = argsText(b.args);
      return `command ${action}${args ? ` (${args})` : ''} proposed by ${env.author}: needs ${plural(b.approvals_required, 'approval')} by ${b.expires_at}`;
    }
    case 'approved':
      return `command ${action} approved by ${env.author} (${b.approval} of ${b.of})`;
    case 'denied':
      return `command ${action} denied by ${env.author}${b.reason ? `: ${b.reason}` : ''}`;
    case 'proposal_expired':
      return `proposal of command ${action} expired without enough approvals`;
    case 'delivered':
      return `command ${action} delivered${b.attempt > 1 ? ` (attempt ${b.attempt})` : ''}`;
    case 'expired':
      return `command ${action} expired without a receipt`;
    case 'completed':
      return `command ${action} ${b.status}`;
  }
}

/**
 * The first line of a command's output, at most `max` characters. A JSON object (what `ping` and `sovereign-scan`
 * print) is summarised as `key=value` of its scalar fields, cut between fields, so a line never ends mid-key.
 */
export function outputSummary(output: string, max = 80): string {
  const first = output.trim().split('\n')[0]!.trim();
  let text = first;
  if (first.startsWith('{')) {
    try {
      const obj = JSON.parse(first) as unknown;
      if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
        const parts: string[] = [];
        for (const [k, v] of Object.entries(obj)) parts.push(`${k}=${v !== null && typeof v === 'object' ? (Array.isArray(v) ? `[${v.length}]` : '{…}') : String(v)}`);
        let out = '';
        for (const p of parts) {
          if ((out ? out.length + 1 : 0) + p.length > max) return out ? `${out} …` : `${p.slice(0, max - 1)}…`;
          out = out ? `${out} ${p}` : p;
        }
        return out;
      }
    } catch {
      // Not JSON after all: shown as text.
    }
  }
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  const space = cut.lastIndexOf(' ');
  text = space > max / 2 ? cut.slice(0, space) : cut;
  return `${text} …`;
}

/** How long a command ran, from its receipt's times ('' when they are missing or make no sense). */
export function runDuration(startedAt: string | undefined, finishedAt: string | undefined): string {
  const ms = Date.parse(finishedAt ?? '') - Date.parse(startedAt ?? '');
  if (!Number.isFinite(ms) || ms <= 0) return '';
  return ms < 1000 ? `${ms} ms` : ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : shortDuration(ms / 1000);
}

function receipt(env: EnvelopeOf<'receipt'>, ctx: DescribeContext): string {
  const p = env.body.payload;
  const action = ctx.actionOf?.(p.command_id) ?? p.command_id;
  const detail = [p.reason ?? '', p.exit_code !== null ? `exit ${p.exit_code}` : '', runDuration(p.started_at, p.finished_at)].filter(Boolean).join(', ');
  const out = outputSummary(p.output);
  return `receipt: ${action} ${p.status}${detail ? ` (${detail})` : ''}${out ? ` — ${out}${p.truncated && !out.endsWith('…') ? ' …' : ''}` : ''}`;
}

function offline(env: EnvelopeOf<'offline'>): string {
  const b = env.body;
  const late = b.declared_late ? ' (declared late: it went silent while the center was down)' : '';
  return `offline — last heartbeat ${b.last_heartbeat_ts} (seq ${b.last_heartbeat_seq}), silent for ${shortDuration(b.silent_s)}${late}`;
}

function rejoin(env: EnvelopeOf<'rejoin'>): string {
  const b = env.body;
  const entries = b.delivered === null ? 'buffered entries unknown (the agent does not report its outbox)' : `${b.delivered} buffered ${b.delivered === 1 ? 'entry' : 'entries'} delivered`;
  const cut = b.outbox === 'interrupted' ? ' before it went silent again' : '';
  return `rejoined after ${shortDuration(b.gap_s)}, ${entries}${cut}`;
}

function describeKnown(env: Envelope, ctx: DescribeContext): string | undefined {
  const parsed = parseEnvelope(env);
  if (!parsed.ok) return undefined;
  const e = parsed.envelope;
  switch (e.kind) {
    case 'heartbeat':
      return heartbeat(e);
    case 'scan':
      return scan(e);
    case 'command':
      return command(e, ctx);
    case 'receipt':
      return receipt(e, ctx);
    case 'enrollment': {
      const b = e.body;
      if (b.action === 'request') return `enrollment requested by ${b.hostname} (${b.os_profile}, key ${b.key_id})${b.auto_approved ? ', auto-approved' : ''}`;
      return `enrollment ${PAST[b.action]} by ${e.author}`;
    }
    case 'join_token': {
      const b = e.body;
      if (b.action === 'create') return `join token ${b.token_id}${b.label ? ` "${b.label}"` : ''} created (${plural(b.uses, 'use')}, expires ${b.expires_at})`;
      return `join token ${b.token_id} revoked`;
    }
    case 'api_token': {
      const b = e.body;
      if (b.action === 'create') return `API token ${b.name} (${b.token_id}) created with ${b.scopes.join(', ')}${b.expires_at ? `, expires ${b.expires_at}` : ''}`;
      return `API token ${b.token_id} revoked`;
    }
    case 'node_key': {
      const b = e.body;
      return `node key rotated: ${b.old_key_id} → ${b.new_key_id} (old key accepted until ${b.old_key_valid_until})`;
    }
    case 'center_key': {
      const s = e.body.rotation.statement;
      return `center key rotated ${s.old_key_id} → ${s.new_key_id} (#${s.serial}) by ${e.author}; old key accepted until ${s.overlap_until}`;
    }
    case 'attention': {
      const b = e.body;
      const reasons = b.reasons.map((r) => r.message);
      return `attention ${b.previous.toUpperCase()} → ${b.status.toUpperCase()}${reasons.length ? `: ${reasons.join('; ')}` : ''}`;
    }
    case 'offline':
      return offline(e);
    case 'rejoin':
      return rejoin(e);
    case 'note':
      return `note: ${e.body.text}`;
    case 'incident': {
      const b = e.body;
      return `incident (${b.severity}${b.status !== 'open' ? `, ${b.status}` : ''}): ${b.title}`;
    }
    case 'ack':
      return `incident ${e.body.incident_id} acknowledged${e.body.text ? `: ${e.body.text}` : ''}`;
    case 'resolve':
      return `incident ${e.body.incident_id} resolved${e.body.text ? `: ${e.body.text}` : ''}`;
    case 'maintenance': {
      const b = e.body;
      if (b.event === 'started') return `maintenance ${b.window_id} for ${describeTarget(b.target)} by ${e.author}, ${b.starts_at} → ${b.ends_at} (scans: ${b.scans}): ${b.reason}`;
      if (b.event === 'extended') return `maintenance ${b.window_id} extended to ${b.ends_at} by ${e.author}`;
      return b.early ? `maintenance ${b.window_id} ended early by ${e.author}` : `maintenance ${b.window_id} ended at its end time`;
    }
    case 'tag': {
      const changes = [...(e.body.add ?? []).map((t) => `+${t}`), ...(e.body.remove ?? []).map((t) => `-${t}`)];
      return `tags ${changes.join(' ')}`;
    }
  }
}

function compact(body: unknown): string {
  try {
    const json = JSON.stringify(body);
    return json === undefined || json === '{}' ? '' : json;
  } catch {
    return '';
  }
}

/** A one-line description of any envelope. */
export function describe(env: Envelope, ctx: DescribeContext = {}): string {
  let text: string | undefined;
  try {
    text = describeKnown(env, ctx);
  } catch {
    // The body does not have its kind's shape: fall through to the raw form rather than hide the line.
  }
  if (text === undefined) {
    const raw = compact(env.body);
    text = raw ? `${env.kind}: ${raw}` : env.kind;
  }
  return text.replace(/\s+/g, ' ').trim();
}
