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
