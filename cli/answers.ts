/**
 * The shapes the CLI expects from the center's operator API. Loose on purpose: only the fields the CLI reads are
 * checked, so a newer center may add fields. An answer that does not fit is refused with one clear line (a proxy
 * page, another service on the port) instead of being printed as `undefined` or crashing a renderer.
 */
import { z } from 'zod';

const node = z.looseObject({ node_id: z.string(), hostname: z.string(), status: z.string() });
export const nodesAnswer = z.array(node);
export const nodeDetailAnswer = z.looseObject({
  node_id: z.string(),
  history: z.array(z.unknown()),
  facts: z.unknown(),
  // Optional: an older center does not send it.
  attention: z.object({ status: z.string(), reasons: z.array(z.object({ code: z.string(), severity: z.string(), message: z.string() })) }).optional(),
  key_rotations: z.array(z.object({ old_key_id: z.string(), new_key_id: z.string(), at: z.string(), old_key_valid_until: z.string() })).optional(),
});
export const nodeDecisionAnswer = z.looseObject({ node_id: z.string(), enrollment: z.string() });

export const joinTokenCreatedAnswer = z.looseObject({ token: z.string(), token_id: z.string(), expires_at: z.string(), uses: z.number() });
export const joinTokensAnswer = z.array(z.looseObject({ token_id: z.string() }));
export const joinTokenRevokedAnswer = z.looseObject({ token_id: z.string() });

const command = z.looseObject({ id: z.string(), status: z.string(), receipt: z.looseObject({ payload: z.record(z.string(), z.unknown()) }).nullable() });
export const commandAnswer = command;
export const commandsAnswer = z.array(command);

export const eventPostedAnswer = z.looseObject({ id: z.string(), seq: z.number(), duplicate: z.boolean() });
export const eventsPageAnswer = z.looseObject({
  items: z.array(z.looseObject({ seq: z.number(), ts: z.string(), kind: z.string(), author: z.string(), body: z.record(z.string(), z.unknown()) })),
  next: z.string().nullable(),
});

export const apiTokenCreatedAnswer = z.looseObject({ token: z.string(), token_id: z.string(), name: z.string(), scopes: z.array(z.string()), expires_at: z.string().nullable() });
export const apiTokensAnswer = z.array(z.looseObject({ token_id: z.string(), name: z.string() }));
export const apiTokenAnswer = z.looseObject({ token_id: z.string(), status: z.string() });

const keyEntry = z.looseObject({ public_key: z.string(), key_id: z.string() });
const rotationEntry = z.looseObject({
  seq: z.number(),
  author: z.string(),
  statement: z.looseObject({ serial: z.number(), old_key_id: z.string(), new_key_id: z.string(), effective_at: z.string(), overlap_until: z.string() }),
});
export const keysAnswer = keyEntry.extend({
  status: z.string(),
  previous: z.array(keyEntry.extend({ retired_at: z.string(), overlap_until: z.string(), in_overlap: z.boolean() })),
  rotations: z.array(rotationEntry),
  prepared: keyEntry.nullable(),
});
export const keyRotatedAnswer = z.looseObject({ rotation: rotationEntry, keys: keysAnswer });
export const keyPreparedAnswer = z.looseObject({ prepared: keyEntry.extend({ created: z.boolean(), file: z.string() }) });
const maintenanceWindow = z.looseObject({
  id: z.string(),
  target: z.record(z.string(), z.string()),
  reason: z.string(),
  scans: z.string(),
  starts_at: z.string(),
  ends_at: z.string(),
  state: z.string(),
  nodes: z.array(z.string()),
  held: z.looseObject({ total: z.number() }),
});
export const maintenanceWindowAnswer = maintenanceWindow;
export const maintenanceListAnswer = z.looseObject({ items: z.array(maintenanceWindow) });
