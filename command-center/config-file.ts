/**
 * The center's JSON settings files (the command policy, the scan schedule): read, parsed and validated the same way,
 * every failure a CONFIG_INVALID naming the file and, for a schema failure, the first field at fault.
 */
import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { readAssetText } from '../lib/assets.js';
import { VaultMeshError, detailsFromZodIssues } from '../protocol/errors.js';

export function parseConfigValue<S extends z.ZodType>(schema: S, value: unknown, source: string): z.infer<S> {
  const r = schema.safeParse(value);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new VaultMeshError('CONFIG_INVALID', `${source}: ${i.path.join('.')}: ${i.message}`, { details: detailsFromZodIssues(r.error.issues) });
  }
  return r.data;
}

/** Reads `path` as JSON (`what` names it in errors), or without a path the shipped `asset` (lib/assets.ts). */
export function loadConfigFile<S extends z.ZodType>(schema: S, what: string, asset: string, path?: string): z.infer<S> {
  if (path === undefined) return parseConfigValue(schema, JSON.parse(readAssetText(asset)), asset);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new VaultMeshError('CONFIG_INVALID', `cannot read ${what} file ${path}: ${(cause as Error).message}`, { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new VaultMeshError('CONFIG_INVALID', `${what} file ${path} is not JSON: ${(cause as Error).message}`, { cause });
  }
  return parseConfigValue(schema, json, path);
}
