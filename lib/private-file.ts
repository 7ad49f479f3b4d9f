/** Secret files: one others can read is refused, as ssh does. */
import { statSync } from 'node:fs';
import { VaultMeshError } from '../protocol/errors.js';

/** Refuses a secret file that others can read, as ssh does: the fix is one chmod away and says so. */
export function assertPrivateFile(path: string): void {
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) {
    throw new VaultMeshError('INSECURE_KEY_FILE', `${path} is accessible by group/others (mode ${mode.toString(8)}); run: chmod 600 ${path}`);
  }
}
