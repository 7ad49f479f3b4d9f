// Make the three compiled entry points executable so `npx vaultmesh*` and direct paths work.
import { chmodSync, existsSync } from 'node:fs';
for (const bin of ['dist/cli/main.js', 'dist/command-center/main.js', 'dist/node-agent/main.js']) {
  if (existsSync(bin)) chmodSync(bin, 0o755);
}
