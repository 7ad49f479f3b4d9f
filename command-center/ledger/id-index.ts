/**
 * A ledger's id index (envelope id → leaf index) as one JSON text, the form a state snapshot keeps it in: a start
 * from the snapshot then holds one string instead of building a Map of every id, and the Map is built on the first
 * lookup or append (a start whose tail holds no ledger entries, and no proof request, never builds it).
 */
import { z } from 'zod';

const textSchema = z.object({ k: z.array(z.string()), v: z.array(z.number().int().nonnegative()) }).refine((t) => t.k.length === t.v.length, 'as many leaves as ids');

/**
 * The ids of the first `size` leaves (a capture's size: leaves appended since are left out). `pause` is awaited
 * every `every` entries, so a capture can give the event loop turns while it walks ≈ 100,000 ids (a Map's iteration
 * goes on correctly over entries added meanwhile; ids are never removed).
 */
export async function idIndexText(ids: ReadonlyMap<string, number>, size: number, pause?: () => Promise<void>, every = 20_000): Promise<string> {
  const k: string[] = [];
  const v: number[] = [];
  let seen = 0;
  for (const [id, index] of ids) {
    if (pause && ++seen % every === 0) await pause();
    if (index >= size) continue;
    k.push(id);
    v.push(index);
  }
  return JSON.stringify({ k, v });
}

/** The index back from its text; throws on a text that is not one (the snapshot's checksum passed, so a bug). */
export function parseIdIndex(text: string): Map<string, number> {
  const { k, v } = textSchema.parse(JSON.parse(text));
  const ids = new Map<string, number>();
  for (let i = 0; i < k.length; i++) ids.set(k[i]!, v[i]!);
  return ids;
}
