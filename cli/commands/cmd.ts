/**
 * `vaultmesh cmd send|list|show`: issue signed commands and read their status and receipts over the operator API.
 * `send --wait` polls `GET /api/commands/:id` until the command has a receipt (or is expired) and prints it.
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
    if (c.receipt || c.status === 'expired') return c;
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
export async function cmdAction(sub: string, params: string[], f: CommonFlags & { arg?: unknown; wait?: boolean; timeout?: string; ttl?: string; node?: string; status?: string; limit?: string | number }): Promise<void> {
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
    if (!f.wait) return void write(f.json ? renderJson(issued) : `${issued.id}  ${issued.status}\n`);
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
    write(f.json ? renderJson(list) : renderTable(rows, ['id', 'node_id', 'action', 'status', 'reason', 'issued_by', 'issued_at', 'deliveries']));
    return;
  }
  if (sub === 'show') {
    const [id] = params;
    if (!id) throw usage('cmd show needs a command id (see cmd list)');
    const c = await api.get(`/api/commands/${encodeURIComponent(id)}`, commandAnswer);
    if (f.json) return void write(renderJson(c));
    const { signed, receipt, args, ...rest } = c;
    write(renderRecord([...Object.entries(rest), ['args', args], ['signed by key', (signed as { key_id: string }).key_id]], 18));
    if (receipt) write(`receipt:\n${renderReceipt(c)}`);
    return;
  }
  throw usage(`unknown action cmd ${sub}: use send, list or show`);
}
