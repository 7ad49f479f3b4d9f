/**
 * Rendering of journal entries for `vaultmesh logs view|tail`: one aligned human line per envelope
 * (`ts  seq  kind  node  author  summary`, ANSI colour only when asked), or the journal line itself for --json.
 * Pure: decisions about TTYs and NO_COLOR are made by the caller.
 */
import type { Envelope } from '../../protocol/envelope.js';
import { describe, type DescribeContext } from '../../protocol/describe.js';
import { readEnvelope } from '../../protocol/envelope-kinds.js';
import { envelopeSeverityRank } from './filters.js';
import { sanitize } from '../terminal-text.js';

export interface FormatOptions {
  colour: boolean;
  /** Lookups for the summary (a command's action by id, learned from its `issued` line). */
  describe?: DescribeContext;
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
  offline: '33',
  rejoin: '32',
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

/** One-line gist of an envelope (the same text as the console's feed); never throws on an unexpected body shape. */
export function summarize(env: Envelope, ctx: DescribeContext = {}): string {
  return describe(env, ctx);
}

/**
 * Remembers each command's action from its `issued` line, so its later steps and its receipt (which carry only the
 * command id) can be named. Bounded: past `max` commands the oldest are forgotten and those lines show the id.
 */
export function createCommandActionMemo(max = 100_000): { see(env: Envelope): void; context: DescribeContext } {
  const actions = new Map<string, string>();
  return {
    see(env) {
      const e = readEnvelope(env);
      if (e?.kind !== 'command' || e.body?.event !== 'issued' || typeof e.body.action !== 'string') return;
      actions.set(e.body.command_id, e.body.action);
      if (actions.size > max) actions.delete(actions.keys().next().value!);
    },
    context: { actionOf: (id) => actions.get(id) },
  };
}

/** The aligned human line for an envelope, without a trailing newline. */
export function formatHuman(env: Envelope, opts: FormatOptions): string {
  const ts = sanitize(env.ts).padEnd(WIDTH.ts);
  const seq = String(env.seq).padStart(WIDTH.seq);
  const kind = sanitize(env.kind).padEnd(WIDTH.kind);
  const node = sanitize(env.node_id ?? '-').padEnd(WIDTH.node);
  const author = sanitize(env.author).padEnd(WIDTH.author);
  const summary = truncate(sanitize(summarize(env, opts.describe)), SUMMARY_MAX);
  if (!opts.colour) return `${ts}  ${seq}  ${kind}  ${node}  ${author}  ${summary}`.trimEnd();
  const kindColour = KIND_COLOURS[env.kind];
  const sevColour = SEVERITY_COLOURS[envelopeSeverityRank(env)] ?? '';
  return (
    `${paint(DIM, ts)}  ${seq}  ${kindColour ? paint(kindColour, kind) : kind}  ${node}  ${paint(DIM, author)}  ` +
    (sevColour && summary ? paint(sevColour, summary) : summary)
  ).trimEnd();
}
