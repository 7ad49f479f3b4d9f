/**
 * What a center on a PostgreSQL store needs beyond a JSONL one, in one module that center.ts imports only when
 * `--store postgres` is set: `pg` and the four PostgreSQL modules are then not loaded by a JSONL center, whose
 * start-up (spawn → listening) pays for every module it imports.
 */
export { createPostgresStore, storedLastSeq } from './postgres-store.js';
export { createPostgresLeadership } from './postgres-leadership.js';
export { createPostgresHeads, HEADS_CHANNEL, storedHeadSigners } from './postgres-heads.js';
export { createPostgresHeartbeatRetention } from './postgres-retention.js';
