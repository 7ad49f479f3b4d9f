/**
 * The orchestrator's schedule file: per os_profile (falling back to `*`) the actions the center issues on its own,
 * how often and with how much jitter. JSON, zod-validated (`--schedule` / VAULTMESH_SCHEDULE; default the shipped
 * `systemd/schedule.json`). It says what is *wanted*; whether it is *allowed* stays the command policy's call
 * (command-policy.ts), applied by the normal command path when the orchestrator issues.
 */
import { z } from 'zod';
import { loadConfigFile, parseConfigValue } from '../config-file.js';
import { parseActionArgs } from '../../protocol/actions.js';
import { actionNameSchema, type CommandArgs } from '../../protocol/command.js';

export const scheduleEntrySchema = z
  .object({
    action: actionNameSchema,
    args: z.record(z.string(), z.unknown()).default({}),
    /** Interval between two runs on one node (1 min … 30 days). */
    every_secs: z.number().int().min(60).max(30 * 86_400),
    /** Each run lands within ± this percentage of the interval (deterministic per node and run). */
    jitter_pct: z.number().min(0).max(50).default(10),
    /** Lifetime of each issued command (the command path's 10 … 86400). */
    ttl_secs: z.number().int().min(10).max(86_400).default(1800),
  })
  .strict()
  .transform((e, ctx) => {
    // Args are checked against the action registry here so a typo fails at start-up, not on every tick.
    const parsed = parseActionArgs(e.action, e.args);
    if (!parsed.ok) {
      ctx.addIssue({ code: 'custom', path: [parsed.code === 'UNKNOWN_ACTION' ? 'action' : 'args'], message: parsed.message });
      return z.NEVER;
    }
    return { ...e, args: parsed.args as CommandArgs };
  });

export const scheduleFileSchema = z
  .object({
    v: z.literal(1),
    /** At most this many commands issued per tick across the fleet (spreads a fleet that is due all at once). */
    max_per_tick: z.number().int().min(1).max(100_000).default(200),
    profiles: z.record(
      z.string().regex(/^(?:\*|[a-z0-9][a-z0-9._-]{0,31})$/, 'must be an os_profile or *'),
      z
        .array(scheduleEntrySchema)
        .max(16)
        .refine((list) => new Set(list.map((e) => e.action)).size === list.length, 'one schedule per action per profile'),
    ),
  })
  .strict();

export type ScheduleEntry = z.output<typeof scheduleEntrySchema>;
export type ScheduleFile = z.output<typeof scheduleFileSchema>;

/** The schedules that apply to a node of `osProfile`: its own profile's list, else `*`'s, else none. */
export function schedulesFor(file: ScheduleFile, osProfile: string): readonly ScheduleEntry[] {
  if (Object.hasOwn(file.profiles, osProfile)) return file.profiles[osProfile]!;
  return Object.hasOwn(file.profiles, '*') ? file.profiles['*']! : [];
}

export function parseSchedule(value: unknown, source = 'schedule'): ScheduleFile {
  return parseConfigValue(scheduleFileSchema, value, source);
}

/** Reads `path`, or without one the shipped default `systemd/schedule.json` (a package asset, lib/assets.ts). */
export function loadScheduleFile(path?: string): ScheduleFile {
  return loadConfigFile(scheduleFileSchema, 'schedule', 'systemd/schedule.json', path);
}
