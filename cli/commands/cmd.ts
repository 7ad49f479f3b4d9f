/**
 * `vaultmesh cmd send|list|show|approve|deny`: issue signed commands, decide on proposals (commands the policy makes
 * wait for approvals) and read their status and receipts over the operator API. `send --wait` polls
 * `GET /api/commands/:id` until the command has a receipt (or is expired, denied or its proposal lapsed) and prints it.
 */
import { randomUUID } from 'node:crypto';
import { VaultMeshError } from '../../protocol/errors.js';
import { apiOptionsFromFlags, createApiClient, type ApiClient } from '../api-client.js';
import { commandAnswer, commandsAnswer } from '../answers.js';
import { printOut, renderJson, renderRecord, renderTable } from '../output.js';
import { sanitize, terminalText } from '../terminal-text.js';
import { parseDuration, type CommonFlags } from './operator.js';

const usage = (msg: string) => new VaultMeshError('USAGE', msg);
const write = (s: string) => printOut(s);

/** `--arg k=v` pairs to args: integers and true/false become JSON numbers/booleans (the center validates per action). */
export function parseArgPairs(pairs: unknown): Record<string, string | number | boolean> {
  const list = pairs === undefined ? [] : Array.isArray(pairs) ? pairs : [pairs];
  const out: Record<string, string | number | boolean> = {};
  for (const p of list.map(String)) {
    const i = p.indexOf('=');
    if (i <= 0) throw usage(`bad --arg ${JSON.stringify(p)}: use key=value`);
    const k = p.slice(0, i);
    const v = p.slice(i + 1);
    out[k] = /^-?\d{1,15}$/.test(v) ? Number(v) : v === 'true' ? true : v === 'false' ? false : v;
  }
  return out;
}

type CommandJson = { id: string; status: string; receipt: { payload: Record<string, unknown> } | null } & Record<string, unknown>;

/** Polls until the command reaches a final status with its receipt, or `timeoutMs` passes. */
export async function waitForReceipt(api: ApiClient, id: string, timeoutMs: number, intervalMs = 250): Promise<CommandJson> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = await api.get(`/api/commands/${encodeURIComponent(id)}`, commandAnswer);
    if (c.receipt || c.status === 'expired' || c.status === 'denied' || c.status === 'proposal_expired') return c;
    if (Date.now() >= deadline) throw new VaultMeshError('REQUEST_TIMEOUT', `command ${id} is still ${c.status} after ${Math.round(timeoutMs / 1000)} s (vaultmesh cmd show ${id})`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export function renderReceipt(c: CommandJson): string {
  const r = c.receipt?.payload;
  if (!r) return `${sanitize(`${c.id}  ${c.status}`)}  (no receipt)\n`;
  const head = sanitize(`${c.id}  ${String(r.status)}${r.reason ? ` (${String(r.reason)})` : ''}  exit=${r.exit_code ?? '-'}  ${String(r.started_at)} → ${String(r.finished_at)}${r.truncated ? '  [output truncated]' : ''}`) + '\n';
  // The output is the node's: its lines stay, anything a terminal would act on is shown escaped.
  const out = terminalText(String(r.output ?? ''));
  return head + (out ? (out.endsWith('\n') ? out : `${out}\n`) : '');
}

/** `vaultmesh cmd` (declared in cli/command-table.ts). */
/** One line about a proposal: how many approvals it has of how many, and who gave them. */
export function renderProposal(c: CommandJson): string {
  const p = c.proposal as { approvals_required: number; approvals: Array<{ by: string }>; expires_at: string; denied: { by: string; reason: string | null } | null } | undefined;
  if (!p) return sanitize(`${c.id}  ${c.status}`) + '\n';
  const who = p.approvals.length ? ` (${p.approvals.map((a) => a.by).join(', ')})` : '';
  const tail = c.status === 'denied' && p.denied ? `denied by ${p.denied.by}${p.denied.reason ? `: ${p.denied.reason}` : ''}` : c.status === 'proposed' ? `expires ${p.expires_at}` : '';
  return sanitize(`${c.id}  ${c.status}  approvals ${p.approvals.length}/${p.approvals_required}${who}${tail ? `  ${tail}` : ''}`) + '\n';
}

export async function cmdAction(sub: string, params: string[], f: CommonFlags & { arg?: unknown; wait?: boolean; timeout?: string; ttl?: string; node?: string; status?: string; limit?: string | number; reason?: string }): Promise<void> {
  const api = createApiClient(apiOptionsFromFlags(f));
  if (sub === 'send') {
    const [nodeId, action, ...extra] = params;
    if (!nodeId || !action || extra.length) throw usage('cmd send needs <node_id> <action> (arguments go in --arg k=v)');
    // One key per invocation: the client's own retries (a timeout, a 503) can never send the command twice.
    const issued = await api.post(
      '/api/commands',
      commandAnswer,
      { node_id: nodeId, action, args: parseArgPairs(f.arg), ...(f.ttl ? { ttl_secs: parseDuration(f.ttl) } : {}) },
      { 'idempotency-key': randomUUID() },
    );
    if (issued.status === 'proposed' && !f.json) {
      const p = issued.proposal as { approvals_required: number; expires_at: string };
      write(sanitize(`${issued.id}  proposed: needs ${p.approvals_required} approval${p.approvals_required === 1 ? '' : 's'} by other operators (vaultmesh cmd approve ${issued.id}) before ${p.expires_at}`) + '\n');
    } else if (!f.wait) return void write(f.json ? renderJson(issued) : `${issued.id}  ${issued.status}\n`);
    if (!f.wait) return;
    const done = await waitForReceipt(api, issued.id, parseDuration(f.timeout ?? '6m') * 1000);
    write(f.json ? renderJson(done) : renderReceipt(done));
    if (done.receipt?.payload.status !== 'succeeded') process.exitCode = 1;
    return;
  }
  if (sub === 'list') {
    const q = new URLSearchParams();
    if (f.node) q.set('node_id', String(f.node));
    if (f.status) q.set('status', String(f.status));
    q.set('limit', String(f.limit ?? 50));
    const list = await api.get(`/api/commands?${q}`, commandsAnswer);
    const rows = list.map((c) => ({ ...c, reason: c.receipt?.payload.reason ?? null }));
    const approvalsOf = (c: CommandJson) => {
      const p = c.proposal as { approvals_required: number; approvals: unknown[] } | undefined;
      return p ? `${p.approvals.length}/${p.approvals_required}` : null;
    };
    const withApprovals = rows.map((c) => ({ ...c, approvals: approvalsOf(c) }));
    write(f.json ? renderJson(list) : renderTable(withApprovals, ['id', 'node_id', 'action', 'status', 'approvals', 'reason', 'issued_by', 'issued_at', 'deliveries']));
    return;
  }
  if (sub === 'approve' || sub === 'deny') {
    const [id, ...extra] = params;
    if (!id || extra.length) throw usage(`cmd ${sub} needs one command id (see cmd list --status proposed)`);
    if (f.reason !== undefined && (typeof f.reason !== 'string' || !f.reason.trim())) throw usage('--reason needs a text');
    const c = await api.post(`/api/commands/${encodeURIComponent(id)}/${sub}`, commandAnswer, f.reason !== undefined ? { reason: String(f.reason) } : {});
    write(f.json ? renderJson(c) : renderProposal(c));
    return;
  }
  if (sub === 'show') {
    const [id] = params;
    if (!id) throw usage('cmd show needs a command id (see cmd list)');
    const c = await api.get(`/api/commands/${encodeURIComponent(id)}`, commandAnswer);
    if (f.json) return void write(renderJson(c));
    const { signed, receipt, args, proposal, ...rest } = c;
    const fields: Array<[string, unknown]> = [...Object.entries(rest), ['args', args], ['signed by key', signed ? (signed as { key_id: string }).key_id : '(not signed)']];
    if (proposal) {
      const p = proposal as { proposed_by: string; approvals_required: number; approvals: Array<{ by: string; at: string; seq: number | null }>; expires_at: string; denied: { by: string; at: string; reason: string | null } | null };
      fields.push(['proposed by', p.proposed_by], ['approvals', `${p.approvals.length} of ${p.approvals_required}`]);
      for (const a of p.approvals) fields.push(['  approved by', `${a.by} at ${a.at}${a.seq !== null ? ` (seq ${a.seq})` : ''}`]);
      if (p.denied) fields.push(['denied by', `${p.denied.by} at ${p.denied.at}${p.denied.reason ? `: ${p.denied.reason}` : ''}`]);
      if (c.status === 'proposed') fields.push(['proposal expires', p.expires_at]);
    }
    write(renderRecord(fields, 18));
    if (receipt) write(`receipt:\n${renderReceipt(c)}`);
    return;
  }
  throw usage(`unknown action cmd ${sub}: use send, list, show, approve or deny`);
}
