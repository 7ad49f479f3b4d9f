/**
 * `vaultmesh events post|list`: notes, incidents, acks, resolutions and tags through `POST /api/events`, and paging
 * through `GET /api/events`. Posts carry an Idempotency-Key, so the client may retry them safely.
 */
import { randomUUID } from 'node:crypto';
import { VaultMeshError } from '../../protocol/errors.js';
import { EVENT_KINDS } from '../../protocol/event-kinds.js';
import { describe } from '../../protocol/describe.js';
import type { Envelope } from '../../protocol/envelope.js';
import { apiOptionsFromFlags, createApiClient } from '../api-client.js';
import { eventPostedAnswer, eventsPageAnswer } from '../answers.js';
import { printOut, renderJson, renderJsonLine } from '../output.js';
import { sanitize } from '../terminal-text.js';
import type { CommonFlags } from './operator.js';

interface EventFlags extends CommonFlags {
  kind?: string;
  node?: string;
  text?: string;
  title?: string;
  severity?: string;
  status?: string;
  description?: string;
  incident?: string;
  add?: string;
  remove?: string;
  body?: string;
  idempotencyKey?: string;
  since?: string | number;
  limit?: string | number;
  all?: boolean;
  oldestFirst?: boolean;
}

const usage = (msg: string) => new VaultMeshError('USAGE', msg);
const list = (s?: string) => (s ? String(s).split(',').map((x) => x.trim()).filter(Boolean) : undefined);

/** The body of a posted event from the convenience flags (or --body JSON), before the server validates it. */
export function eventBodyFromFlags(kind: string, f: EventFlags): Record<string, unknown> {
  if (f.body !== undefined) {
    try {
      const b = JSON.parse(String(f.body));
      if (typeof b !== 'object' || b === null || Array.isArray(b)) throw new Error('not an object');
      return b;
    } catch (err) {
      throw usage(`--body must be a JSON object: ${(err as Error).message}`);
    }
  }
  const defined = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  switch (kind) {
    case 'note':
      if (!f.text) throw usage('a note needs --text');
      return { text: String(f.text) };
    case 'incident':
      if (!f.title || !f.severity) throw usage('an incident needs --title and --severity critical|high|medium|low');
      return defined({ title: String(f.title), severity: f.severity, status: f.status, description: f.description });
    case 'ack':
    case 'resolve':
      if (!f.incident) throw usage(`${kind} needs --incident <incident id>`);
      return defined({ incident_id: String(f.incident), text: f.text === undefined ? undefined : String(f.text) });
    case 'tag':
      return defined({ add: list(f.add), remove: list(f.remove) });
    default:
      throw usage(`unknown kind ${kind}: use ${Object.keys(EVENT_KINDS).join(', ')} (or --body JSON)`);
  }
}

/** `vaultmesh events` (declared in cli/command-table.ts). */
export async function eventsAction(action: string, f: EventFlags): Promise<void> {
  const api = createApiClient(apiOptionsFromFlags(f));
  if (action === 'post') {
    if (!f.kind) throw usage('events post needs --kind');
    const kind = String(f.kind);
    const body = eventBodyFromFlags(kind, f);
    const r = await api.post(
      '/api/events',
      eventPostedAnswer,
      { kind, ...(f.node ? { node_id: String(f.node) } : {}), body },
      { 'idempotency-key': f.idempotencyKey ? String(f.idempotencyKey) : randomUUID() },
    );
    printOut(f.json ? renderJson(r) : `${sanitize(`${kind} ${r.id} (seq ${r.seq})`)}${r.duplicate ? ' (already recorded)' : ''}\n`);
    return;
  }
  if (action === 'list') {
    const params = new URLSearchParams();
    if (f.kind) params.set('kind', String(f.kind));
    if (f.node) params.set('node_id', String(f.node));
    if (f.since !== undefined) params.set('since', String(f.since));
    if (f.limit !== undefined) params.set('limit', String(f.limit));
    // Newest first by default: `--limit 5` are the five latest, as with `tail`, and --all pages back in time.
    const oldestFirst = f.oldestFirst === true;
    if (!oldestFirst) params.set('order', 'desc');
    for (;;) {
      const page = await api.get(`/api/events?${params}`, eventsPageAnswer);
      for (const e of page.items) {
        printOut(f.json ? `${renderJsonLine(e)}\n` : `${sanitize(`${e.ts}  ${String(e.seq).padStart(8)}  ${sanitize(String(e.kind)).padEnd(10)}  ${sanitize(String(e.node_id ?? '-')).padEnd(16)}  ${e.author}  ${summary(e as Envelope)}`)}\n`);
      }
      if (!f.all || !page.next) return;
      params.set(oldestFirst ? 'since' : 'before', page.next);
    }
  }
  throw usage(`unknown action events ${action}: use post or list`);
}

/** The line `vaultmesh logs view` and the console show for the envelope (sanitised by the caller). */
function summary(e: Envelope): string {
  return describe(e).slice(0, 160);
}
