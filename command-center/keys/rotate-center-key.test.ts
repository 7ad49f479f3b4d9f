import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../protocol/envelope.js';
import { loadOrCreateKeyFile, readKeyFile } from '../../lib/key-file.js';
import { quietLogger, tempDir } from '../../test/helpers.js';
import { createCenterKeyRing } from './center-key-ring.js';
import type { RotationRecord } from './center-key-history.js';
import { createRotator } from './rotate-center-key.js';

describe('center key rotator', () => {
  it('seals the ledgers under the old key before the statement is journaled, then signs with the new key', async () => {
    const t = tempDir();
    try {
      const { key: old } = loadOrCreateKeyFile(join(t.dir, 'cc-key.pem'));
      const ring = createCenterKeyRing({ stateDir: t.dir, initial: readKeyFile(join(t.dir, 'cc-key.pem')), log: quietLogger });
      const steps: string[] = [];
      const history: RotationRecord[] = [];
      const rotator = createRotator({
        ring,
        history: () => history,
        syncLog: async () => void steps.push('sync'),
        sealLedgers: async () => void steps.push(`seal by ${ring.key.keyId}`),
        submit: async (draft) => {
          steps.push(`journal by ${ring.key.keyId}`);
          return { envelope: { seq: 7, author: draft.author } as Envelope, duplicate: false };
        },
        now: () => new Date(),
      });
      const record = await rotator.rotate({ author: 'admin', overlapSecs: 60 });
      expect(record.statement).toMatchObject({ serial: 1, old_key_id: old.keyId });
      expect(steps).toEqual(['sync', `seal by ${old.keyId}`, `journal by ${old.keyId}`]);
      expect(ring.key.keyId).toBe(record.statement.new_key_id);
    } finally {
      t.cleanup();
    }
  });
});
