/**
 * The center's command policy: per os_profile allowlists of actions and of systemd units, read from a JSON file
 * (`--policy` / VAULTMESH_POLICY; default the shipped `systemd/policy.json`). The center refuses to sign anything
 * outside it; agents enforce their own local allowlist as well (defence in depth). `checkPolicy` is pure.
 */
import { z } from 'zod';
import { loadConfigFile, parseConfigValue } from '../config-file.js';
import { UNIT_ACTIONS } from '../../protocol/actions.js';
import { actionNameSchema, type CommandArgs } from '../../protocol/command.js';
import { MAX_APPROVALS } from '../../protocol/center-events.js';

/** A unit pattern: an exact unit name, `*` (any unit) or a prefix ending in `*` (`vaultmesh-*`). */
const unitPatternSchema = z.string().regex(/^(?:\*|[A-Za-z0-9][A-Za-z0-9@._:-]{0,127}\*?)$/, 'must be a unit name, a prefix ending in *, or *');

export const policyProfileSchema = z
  .object({
    actions: z.array(actionNameSchema).max(64),
    /** Units that service-status and collect-journal may name. */
    units: z.array(unitPatternSchema).max(1024).default([]),
    /** Units that service-restart may name (kept apart: restarting is the only mutating action). */
    restart_units: z.array(unitPatternSchema).max(1024).default([]),
    /**
     * Actions that wait for approvals before the center signs them: action → how many distinct operators other than
     * the proposer must approve (1-16). An action not named here is signed at once.
     */
    approvals: z.record(actionNameSchema, z.number().int().min(1).max(MAX_APPROVALS)).default({}),
  })
  .strict()
  .superRefine((p, ctx) => {
    for (const action of Object.keys(p.approvals)) {
      if (!p.actions.includes(action)) ctx.addIssue({ code: 'custom', path: ['approvals', action], message: `${action} needs approvals but is not in this profile's actions` });
    }
  });

/** How long a proposal waits for its approvals when the policy file does not say (1 h). */
export const DEFAULT_PROPOSAL_TTL_SECS = 3600;

export const commandPolicySchema = z
  .object({
    v: z.literal(1),
    /** How long a proposal (a command waiting for approvals) stays open before it is journaled proposal_expired. */
    proposal_ttl_secs: z.number().int().min(60).max(7 * 86_400).default(DEFAULT_PROPOSAL_TTL_SECS),
    profiles: z
      .record(z.string().regex(/^(?:\*|[a-z0-9][a-z0-9._-]{0,31})$/, 'must be an os_profile or *'), policyProfileSchema)
      .refine((p) => Object.keys(p).length > 0, 'at least one profile'),
  })
  .strict();

export type CommandPolicy = z.infer<typeof commandPolicySchema>;
/** A refusal names its rule: no profile for the OS, the action not in the profile, or the unit not in its list. */
export type PolicyDecision = { ok: true } | { ok: false; code: 'NO_PROFILE' | 'ACTION_NOT_ALLOWED' | 'UNIT_NOT_ALLOWED'; reason: string };

export function parsePolicy(value: unknown, source = 'policy'): CommandPolicy {
  return parseConfigValue(commandPolicySchema, value, source);
}

/** Reads `path`, or without one the shipped default `systemd/policy.json` (a package asset, lib/assets.ts). */
export function loadPolicyFile(path?: string): CommandPolicy {
  return loadConfigFile(commandPolicySchema, 'policy', 'systemd/policy.json', path);
}

/** Whether `unit` matches one of the policy's unit patterns (exact, `*`, or a prefix ending in `*`). */
export function unitMatches(patterns: readonly string[], unit: string): boolean {
  return patterns.some((p) => p === '*' || p === unit || (p.endsWith('*') && unit.startsWith(p.slice(0, -1))));
}

export type PolicyProfile = z.infer<typeof policyProfileSchema>;

/** The profile that governs nodes of `osProfile`: its own entry, else `*`, else none (everything denied). */
export function policyProfileFor(policy: CommandPolicy, osProfile: string): { name: string; profile: PolicyProfile } | undefined {
  const name = Object.hasOwn(policy.profiles, osProfile) ? osProfile : '*';
  const profile = Object.hasOwn(policy.profiles, name) ? policy.profiles[name] : undefined;
  return profile ? { name, profile } : undefined;
}

/** May a node of `osProfile` be sent `action` with `args`? The profile falls back to `*`; no profile denies all. */
export function checkPolicy(policy: CommandPolicy, req: { osProfile: string; action: string; args: CommandArgs }): PolicyDecision {
  const found = policyProfileFor(policy, req.osProfile);
  if (!found) return { ok: false, code: 'NO_PROFILE', reason: `no policy profile for os_profile ${req.osProfile} and no * profile` };
  const { name, profile } = found;
  if (!profile.actions.includes(req.action)) {
    return { ok: false, code: 'ACTION_NOT_ALLOWED', reason: `action ${req.action} is not allowed for os_profile ${req.osProfile} (profile ${name} allows: ${profile.actions.join(', ') || 'nothing'})` };
  }
  if (UNIT_ACTIONS.has(req.action)) {
    const unit = String(req.args.unit ?? '');
    const list = req.action === 'service-restart' ? profile.restart_units : profile.units;
    if (!unitMatches(list, unit)) {
      return { ok: false, code: 'UNIT_NOT_ALLOWED', reason: `unit ${unit} is not allowed for ${req.action} on os_profile ${req.osProfile} (profile ${name})` };
    }
  }
  return { ok: true };
}

/**
 * How many approvals (distinct operators besides the proposer) `action` needs on a node of `osProfile`: 0 when it is
 * signed at once. Read from the same profile `checkPolicy` uses, so the two can never disagree about the profile.
 */
export function approvalsRequired(policy: CommandPolicy, osProfile: string, action: string): number {
  const found = policyProfileFor(policy, osProfile);
  return found && Object.hasOwn(found.profile.approvals, action) ? found.profile.approvals[action]! : 0;
}
