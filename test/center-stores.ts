/**
 * The stores a center behaviour suite runs against: `describe.each(centerStores(suite))` gives each one's name and
 * the center settings that select it (for PostgreSQL, a fresh database on a server started for the file).
 */
import { afterAll } from 'vitest';
import { requirePostgres, startPostgres, type TestPostgres } from './postgres.js';

export type StoreOverrides = () => Promise<Record<string, unknown>>;

// One server per test file (each file is its own module instance), started by the first test that needs it.
let server: Promise<TestPostgres> | undefined;
let stopRegistered = false;

export function centerStores(suite: string): Array<[string, StoreOverrides]> {
  const stores: Array<[string, StoreOverrides]> = [['jsonl', async () => ({})]];
  if (!requirePostgres(suite)) return stores;
  if (!stopRegistered) {
    stopRegistered = true;
    afterAll(async () => (await server)?.stop());
  }
  stores.push(['postgres', async () => ({ store: 'postgres', databaseUrl: await (await (server ??= startPostgres())).newDatabase() })]);
  return stores;
}

/** Everything a center has stored, as text (every journal line, either store): for "this secret is never stored" checks. */
export async function storedText(config: { store: string; logDir: string; databaseUrl?: string | undefined }): Promise<string> {
  if (config.store === 'postgres') {
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: config.databaseUrl });
    await client.connect();
    try {
      const r = await client.query<{ line: Buffer }>('SELECT line FROM envelopes ORDER BY seq');
      if (r.rows.length === 0) throw new Error('no stored envelopes: wrong database?');
      return r.rows.map((row) => row.line.toString('utf8')).join('\n');
    } finally {
      await client.end();
    }
  }
  const { readdirSync, readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  return readdirSync(config.logDir)
    .filter((f) => f.endsWith('.jsonl'))
    .map((f) => readFileSync(join(config.logDir, f), 'utf8'))
    .join('');
}
