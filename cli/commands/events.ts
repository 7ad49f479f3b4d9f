/**
 * `vaultmesh events post|list`: notes, incidents, acks, resolutions and tags through `POST /api/events`, and paging
 * through `GET /api/events`. Posts carry an Idempotency-Key, so the client may retry them safely.
 */
import type { CAC } from 'cac';
import { randomUUID } from 'node:crypto';
import { VaultMeshError } from '../../protocol/errors.js';
import { EVENT_KINDS } from '../../protocol/event-kinds.js';
import { describe } from '../../protocol/describe.js';
import type { Envelope } from '../../protocol/envelope.js';
import { ADMIN_SOCKET_OFF_OPTION, ADMIN_SOCKET_OPTION, apiOptionsFromFlags, createApiClient } from '../api-client.js';
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

export function registerEventsCommands(cli: CAC): void {
  cli
    .command('events <action>', 'Notes, incidents and the event history: post | list')
    .usage('events <post|list> [options]')
    .option('--cc-url <url>', 'Command center URL (VAULTMESH_CC_URL, default http://127.0.0.1:8088)')
    .option('--state-dir <dir>', 'Where admin.token and admin.sock live (VAULTMESH_STATE_DIR, default ./state)')
    .option(...ADMIN_SOCKET_OPTION)
    .option(...ADMIN_SOCKET_OFF_OPTION)
    .option('--token <token>', 'Operator or bot token (VAULTMESH_TOKEN)')
    .option('--json', 'Machine-readable output')
    .option('--kind <kind>', 'post: note | incident | ack | resolve | tag; list: kinds to show, comma-separated')
    .option('--node <id>', 'The node concerned (post) or to filter on (list)')
    .option('--text <text>', 'post note/ack/resolve: the text')
    .option('--title <title>', 'post incident: title')
    .option('--severity <level>', 'post incident: critical | high | medium | low')
    .option('--status <status>', 'post incident: open | acknowledged | resolved (default open)')
    .option('--description <text>', 'post incident: longer description')
    .option('--incident <id>', 'post ack/resolve: the incident id')
    .option('--add <tags>', 'post tag: labels to add, comma-separated')
    .option('--remove <tags>', 'post tag: labels to remove, comma-separated')
    .option('--body <json>', 'post: the whole body as JSON instead of the flags above')
    .option('--idempotency-key <key>', 'post: makes a retry safe (default: a fresh UUID per invocation)')
    .option('--since <seq|time>', 'list: after this seq or RFC 3339 time')
    .option('--limit <n>', 'list: page size 1..1000 (default 100)')
    .option('--all', 'list: follow the cursor through every page')
    .option('--oldest-first', 'list: oldest first (default: the newest first)')
    .example('  $ vaultmesh events post --kind note --node web-01 --text "rebooted for kernel 6.1.0-27"')
    .example('  $ vaultmesh events post --kind incident --node db-01 --title "replica lag" --severity high')
    .example('  $ vaultmesh events post --kind resolve --incident 3f0c… --text "fixed"')
    .example('  $ vaultmesh events list --kind note,incident --since 2026-11-20T00:00:00Z --all --json')
    .action(async (action: string, f: EventFlags) => {
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
    });
}

/** The line `vaultmesh logs view` and the console show for the envelope (sanitised by the caller). */
function summary(e: Envelope): string {
  return describe(e).slice(0, 160);
}
