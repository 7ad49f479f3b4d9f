import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openJournal, type Journal } from './journal.js';
import type { Logger } from '../../lib/logger.js';
import { tempDir } from '../../test/helpers.js';
import type { EnvelopeDraft } from '../../protocol/envelope.js';
/** One draft through the batch API, as the single appends of these tests. */
const appendOne = (j: Pick<Journal, 'append'>, d: EnvelopeDraft) => j.append([d]).then(([c]) => c!.envelope);


const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

describe('journal logging', () => {
  it('reports a throwing commit hook through the injected logger, and the append is still acknowledged', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const lines: string[] = [];
    const log: Logger = { info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`) };
    const j = await openJournal({
      dir: t.dir,
      log,
      onCommit: () => {
        throw new Error('projection bug');
      },
    });
    const env = await appendOne(j, { kind: 'note', author: 'op', body: { text: 'hello' } });
    await j.close();
    expect(env.seq).toBe(1);
    expect(readFileSync(join(t.dir, 'events.jsonl'), 'utf8')).toContain('"text":"hello"');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^error journal: onCommit hook failed: Error: projection bug\n\s+at /);
  });
});
