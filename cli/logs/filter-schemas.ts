/**
 * The zod schemas of the `vaultmesh logs` filter flags. A module of their own so that zod and the envelope schemas
 * load only when a flag that needs one is given (parseFilter imports this on demand): a pass with no such flag
 * keeps their ≈ 12 MB of RSS out of its memory.
 */
import { z } from 'zod';
import { kindSchema, nodeIdSchema } from '../../protocol/envelope.js';
import { SEVERITIES } from '../../protocol/severities.js';

export const kindListSchema = z.array(kindSchema).min(1);
export { nodeIdSchema };
export const limitSchema = z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER);
export const severitySchema = z.enum(SEVERITIES);
