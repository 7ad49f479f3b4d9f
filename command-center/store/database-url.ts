/**
 * The PostgreSQL URL of `--store postgres`: given directly (flag or VAULTMESH_DATABASE_URL) or in a file. The file
 * holds a password, so one that group or others can read is refused, as for the center's key.
 */
import { readFileSync } from 'node:fs';
import { VaultMeshError } from '../../protocol/errors.js';
import { assertPrivateFile } from '../../lib/key-file.js';

export function databaseUrl(config: { databaseUrl?: string | undefined; databaseUrlFile?: string | undefined }): string {
  if (config.databaseUrl) return config.databaseUrl;
  const file = config.databaseUrlFile;
  if (!file) throw new VaultMeshError('CONFIG_INVALID', '--store postgres needs --database-url or --database-url-file');
  assertPrivateFile(file);
  const url = readFileSync(file, 'utf8').trim();
  if (!/^postgres(ql)?:\/\/\S+$/.test(url)) throw new VaultMeshError('CONFIG_INVALID', `${file} does not hold a postgres:// URL`);
  return url;
}

/** The URL without its password, for log lines. */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparseable URL)';
  }
}
