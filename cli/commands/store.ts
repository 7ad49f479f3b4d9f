/**
 * `vaultmesh store copy --from <log dir | postgres URL> --to <log dir | postgres URL>`: moves an envelope log
 * between the JSONL and the PostgreSQL store, byte for byte (cli/store-copy.ts). Offline: stop the center first.
 */
import { z } from 'zod';
import { VaultMeshError } from '../../protocol/errors.js';
import { printOut, renderJson } from '../output.js';
import { copyStore, parseLocation } from '../store-copy.js';

const flagsSchema = z.object({
  action: z.literal('copy', { error: 'the only store action is copy' }),
  from: z.string({ error: '--from <log dir | postgres URL> is required' }).min(1),
  to: z.string({ error: '--to <log dir | postgres URL> is required' }).min(1),
  json: z.boolean().optional(),
});

/** A URL without its password, for output. */
function shown(location: string): string {
  if (!/^postgres(ql)?:\/\//.test(location)) return location;
  try {
    const u = new URL(location);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparseable URL)';
  }
}

/** `vaultmesh store` (declared in cli/command-table.ts). */
export async function storeAction(action: string, flags: Record<string, unknown>): Promise<void> {
  const parsed = flagsSchema.safeParse({ action, from: flags.from, to: flags.to, json: flags.json });
  if (!parsed.success) throw new VaultMeshError('USAGE', parsed.error.issues[0]!.message);
  const { from, to, json } = parsed.data;
  const r = await copyStore(parseLocation(from), parseLocation(to));
  if (json) printOut(renderJson({ envelopes: r.envelopes, last_seq: r.lastSeq, bytes: r.bytes }));
  else printOut(`copied ${r.envelopes} envelopes (up to seq ${r.lastSeq}, ${r.bytes} bytes of lines) from ${shown(from)} to ${shown(to)}\n`);
}
