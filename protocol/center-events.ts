/**
 * Bodies of the envelopes the center writes itself (never accepted from clients on `POST /api/events`): command
 * lifecycle events, enrollments, join and API tokens, attention transitions. The agent-sent bodies (heartbeat,
 * scan, receipt) are in agent-api.ts, scan.ts and command.ts; the client-postable ones in event-kinds.ts.
 * The registry that maps every kind to its body is envelope-kinds.ts.
 */
import { z } from 'zod';
import { idSchema, rfc3339Schema } from './envelope.js';
import { factsSchema, hostnameSchema, osProfileSchema } from './agent-api.js';
import { RECEIPT_STATUSES, actionNameSchema, commandArgsSchema, signedCommandSchema } from './command.js';
import { hexKeySchema, keyIdSchema, sha256HexSchema } from './hex.js';
import { scopeSchema } from './scopes.js';

// ---------------------------------------------------------------- command (commands.jsonl)

/**
 * A command's life as `command` envelopes; each carries `command_id` and the status it leads to, so an SSE client
 * can follow a command from these alone. The outcome itself is the `receipt` envelope journaled beside `completed`.
 */
/**
 * One approval of a proposed command, as the `issued` event names it: who (the authenticated identity), when, and
 * the seq of its `approved` envelope. The approval that met the threshold has no seq of its own: it is the `issued`
 * envelope itself (its author and seq), written in the same append as the signature.
 */
export const commandApprovalSchema = z
  .object({ by: z.string().min(1).max(256), at: rfc3339Schema, seq: z.number().int().positive().optional(), reason: z.string().min(1).max(512).optional() })
  .strict();
export type CommandApproval = z.infer<typeof commandApprovalSchema>;

/** Most approvals a policy may require for one action (docs/OPERATIONS.md, "Approvals"). */
export const MAX_APPROVALS = 16;

export const commandIssuedSchema = z
  .object({
    event: z.literal('issued'),
    command_id: idSchema,
    status: z.literal('queued'),
    action: actionNameSchema,
    signed: signedCommandSchema,
    /** The client's `Idempotency-Key`, when it sent one. */
    idempotency_key: idSchema.optional(),
    /** A command that needed approval: who proposed it and who approved it, in order (the last one is this envelope's author). */
    proposed_by: z.string().min(1).max(256).optional(),
    approvals: z.array(commandApprovalSchema).min(1).max(MAX_APPROVALS).optional(),
  })
  .strict();
/**
 * A command the policy makes wait for approvals: journaled unsigned; the center signs it (an `issued` event with the
 * same command_id) when `approvals_required` distinct operators other than the proposer have approved it.
 */
export const commandProposedSchema = z
  .object({
    event: z.literal('proposed'),
    command_id: idSchema,
    status: z.literal('proposed'),
    action: actionNameSchema,
    args: commandArgsSchema,
    /** The signed command's lifetime, counted from when it is signed. */
    ttl_secs: z.number().int().min(10).max(86_400),
    approvals_required: z.number().int().min(1).max(MAX_APPROVALS),
    /** The proposal is journaled `proposal_expired` if the threshold is not met by then. */
    expires_at: rfc3339Schema,
    idempotency_key: idSchema.optional(),
  })
  .strict();
/** An approval that did not meet the threshold yet (`approval` n of `of`). */
export const commandApprovedSchema = z
  .object({
    event: z.literal('approved'),
    command_id: idSchema,
    status: z.literal('proposed'),
    approval: z.number().int().min(1).max(MAX_APPROVALS),
    of: z.number().int().min(1).max(MAX_APPROVALS),
    /** Why, in the approver's words (a change ticket). */
    reason: z.string().min(1).max(512).optional(),
  })
  .strict();
/** One deny ends a proposal: it is never signed. */
export const commandDeniedSchema = z
  .object({ event: z.literal('denied'), command_id: idSchema, status: z.literal('denied'), reason: z.string().min(1).max(512).optional() })
  .strict();
export const commandProposalExpiredSchema = z
  .object({ event: z.literal('proposal_expired'), command_id: idSchema, status: z.literal('proposal_expired') })
  .strict();
export const commandDeliveredSchema = z
  .object({ event: z.literal('delivered'), command_id: idSchema, status: z.literal('delivered'), attempt: z.number().int().positive() })
  .strict();
export const commandExpiredSchema = z.object({ event: z.literal('expired'), command_id: idSchema, status: z.literal('expired') }).strict();
export const commandCompletedSchema = z.object({ event: z.literal('completed'), command_id: idSchema, status: z.enum(RECEIPT_STATUSES) }).strict();
export const commandEventSchema = z.discriminatedUnion('event', [
  commandIssuedSchema,
  commandDeliveredSchema,
  commandExpiredSchema,
  commandCompletedSchema,
  commandProposedSchema,
  commandApprovedSchema,
  commandDeniedSchema,
  commandProposalExpiredSchema,
]);
export type CommandEvent = z.infer<typeof commandEventSchema>;
export type CommandEventName = CommandEvent['event'];

// ---------------------------------------------------------------- enrollment

export const ENROLLMENT_DECISIONS = ['approve', 'reject', 'revoke'] as const;
export type EnrollmentDecision = (typeof ENROLLMENT_DECISIONS)[number];

export const enrollmentRequestBodySchema = z
  .object({
    action: z.literal('request'),
    token_id: z.string().min(1).max(64),
    hostname: hostnameSchema,
    os_profile: osProfileSchema,
    public_key: hexKeySchema,
    key_id: keyIdSchema,
    agent_version: z.string().min(1).max(64),
    facts: factsSchema,
    /** The center runs with --auto-approve and this was a new node id. */
    auto_approved: z.literal(true).optional(),
  })
  .strict();
export const enrollmentDecisionBodySchema = z.object({ action: z.enum(ENROLLMENT_DECISIONS) }).strict();
export const enrollmentBodySchema = z.union([enrollmentRequestBodySchema, enrollmentDecisionBodySchema]);
export type EnrollmentBody = z.infer<typeof enrollmentBodySchema>;

// ---------------------------------------------------------------- join_token

export const joinTokenIdSchema = z.string().regex(/^[a-f0-9]{12}$/, 'must be 12 lowercase hex digits');
export const joinTokenBodySchema = z.discriminatedUnion('action', [
  z
    .object({
      action: z.literal('create'),
      token_id: joinTokenIdSchema,
      token_sha256: sha256HexSchema,
      expires_at: rfc3339Schema,
      uses: z.number().int().positive(),
      label: z.string().max(128),
    })
    .strict(),
  z.object({ action: z.literal('revoke'), token_id: joinTokenIdSchema }).strict(),
]);
export type JoinTokenBody = z.infer<typeof joinTokenBodySchema>;

// ---------------------------------------------------------------- api_token

export const apiTokenIdSchema = joinTokenIdSchema;
export const apiTokenNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, 'must be 1-64 of A-Z a-z 0-9 . _ @ - starting with a letter or digit');
export const apiTokenBodySchema = z.discriminatedUnion('action', [
  z
    .object({
      action: z.literal('create'),
      token_id: apiTokenIdSchema,
      name: apiTokenNameSchema,
      scopes: z.array(scopeSchema).min(1),
      token_sha256: sha256HexSchema,
      /** null: never expires. */
      expires_at: rfc3339Schema.nullable(),
    })
    .strict(),
  z.object({ action: z.literal('revoke'), token_id: apiTokenIdSchema }).strict(),
]);
export type ApiTokenBody = z.infer<typeof apiTokenBodySchema>;

// ---------------------------------------------------------------- attention

export const ATTENTION_STATUSES = ['ok', 'attn', 'crit'] as const;
export type AttentionStatus = (typeof ATTENTION_STATUSES)[number];
export const attentionStatusSchema = z.enum(ATTENTION_STATUSES);
export const attentionReasonSchema = z
  .object({
    /** Stable machine-readable code (docs/ATTENTION.md). */
    code: z.string().min(1).max(64),
    severity: z.enum(['attn', 'crit']),
    message: z.string().max(1024),
  })
  .strict();
export type AttentionReason = z.infer<typeof attentionReasonSchema>;
export const attentionBodySchema = z
  .object({ status: attentionStatusSchema, previous: attentionStatusSchema, reasons: z.array(attentionReasonSchema) })
  .strict();
export type AttentionBody = z.infer<typeof attentionBodySchema>;
