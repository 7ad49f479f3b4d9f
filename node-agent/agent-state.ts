/**
 * The agent's small persistent state in its state dir (0700): its key (`node-key.pem`, 0600) and what it learned
 * from the center (`agent-state.json`: center keys trusted on first use, enrollment status).
 */
import { mkdirSync, readFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { loadOrCreateKeyFile, writeFileAtomicSync, type KeyPair } from '../protocol/keys.js';
import { hexKeySchema } from '../protocol/agent-api.js';

const persistedSchema = z.object({
  enrollment: z.enum(['none', 'pending', 'approved']).default('none'),
  tofu_center_keys: z.array(z.object({ public_key: hexKeySchema, key_id: z.string() })).default([]),
});
export type PersistedAgentState = z.infer<typeof persistedSchema>;

export interface AgentStateStore {
  key: KeyPair;
  keyCreated: boolean;
  read(): PersistedAgentState;
  write(s: PersistedAgentState): void;
}

export function openAgentState(stateDir: string): AgentStateStore {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  chmodSync(stateDir, 0o700);
  const { key, created } = loadOrCreateKeyFile(join(stateDir, 'node-key.pem'));
  const file = join(stateDir, 'agent-state.json');
  return {
    key,
    keyCreated: created,
    read() {
      try {
        return persistedSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return persistedSchema.parse({});
        throw err;
      }
    },
    write(s) {
      writeFileAtomicSync(file, `${JSON.stringify(s, null, 2)}\n`, 0o600);
    },
  };
}
