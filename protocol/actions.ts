/**
 * The catalogue of built-in command actions and their argument schemas, shared by the center (which validates and
 * normalises args before signing) and the agent (which parses them again before running). Adding an action means
 * one entry here and one implementation in node-agent/actions.ts; there is no way to send a shell string.
 */
import { z } from 'zod';
import type { CommandArgs } from './command.js';

/** A systemd unit name that cannot be mistaken for an option (no leading `-`). */
export const commandUnitSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9@._:-]{0,127}$/, 'must be a systemd unit name');

export const MAX_JOURNAL_LINES = 1000;

export const ACTION_ARGS = {
  ping: z.object({}).strict(),
  'sovereign-scan': z.object({}).strict(),
  'service-status': z.object({ unit: commandUnitSchema }).strict(),
  'service-restart': z.object({ unit: commandUnitSchema }).strict(),
  'collect-journal': z.object({ unit: commandUnitSchema, lines: z.coerce.number().int().min(1).max(MAX_JOURNAL_LINES).default(100) }).strict(),
  /** The node replaces its own key (POST /api/agent/rotate-key); the receipt names the new key id. */
  'rotate-key': z.object({}).strict(),
} as const;

export type ActionName = keyof typeof ACTION_ARGS;
export const ACTION_NAMES = Object.keys(ACTION_ARGS) as ActionName[];
/** Actions whose `unit` argument the policy constrains. */
export const UNIT_ACTIONS: ReadonlySet<string> = new Set(['service-status', 'service-restart', 'collect-journal']);

export function isActionName(action: string): action is ActionName {
  return Object.hasOwn(ACTION_ARGS, action);
}

/** Why action args were refused: an action outside the registry, or args that do not fit the action's schema. */
export type ActionArgsCode = 'UNKNOWN_ACTION' | 'INVALID_ARGS';

/** Validates and normalises (defaults, number coercion) the args of a known action. */
export function parseActionArgs(action: string, args: unknown): { ok: true; args: CommandArgs } | { ok: false; code: ActionArgsCode; message: string } {
  if (!isActionName(action)) return { ok: false, code: 'UNKNOWN_ACTION', message: `unknown action ${JSON.stringify(action)}; known: ${ACTION_NAMES.join(', ')}` };
  const r = ACTION_ARGS[action].safeParse(args ?? {});
  if (!r.success) {
    const i = r.error.issues[0]!;
    return { ok: false, code: 'INVALID_ARGS', message: `${action} args${i.path.length ? `.${i.path.join('.')}` : ''}: ${i.message}` };
  }
  return { ok: true, args: r.data as CommandArgs };
}
