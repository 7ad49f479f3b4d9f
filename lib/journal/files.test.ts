import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach, tempDir } from '../../test/helpers.js';
import { journalNameOf, listJournalFiles, listSegments, segmentLastSeq, segmentName } from './index.js';

const onCleanup = cleanupAfterEach();

describe('journal file names', () => {
  it.each([
    ['heartbeats.jsonl', 'heartbeats'],
    ['sovereign-scans.jsonl', 'scans'],
    ['commands.jsonl', 'commands'],
    ['events.jsonl', 'events'],
    [segmentName(42), 'heartbeats'],
    ['heartbeats-000000000042.jsonl.torn-2025-01-01T00-00-00-000Z', undefined],
    ['events.jsonl.quarantine-2025', undefined],
    ['events-copy.jsonl', undefined],
    ['heartbeats-old.jsonl', undefined], // not a segment the center wrote: replay would not read it either
    ['heartbeats.summary.json', undefined],
    ['ROOT.txt', undefined],
  ])('%s → %s', (name, journal) => {
    expect(journalNameOf(name)).toBe(journal);
  });

  it('segment names sort by seq and give it back', () => {
    expect(segmentName(42)).toBe('heartbeats-000000000042.jsonl');
    expect(segmentLastSeq(segmentName(1_234_567))).toBe(1_234_567);
    expect(segmentLastSeq('heartbeats.jsonl')).toBeUndefined();
  });

  it('lists the journals and segments of a dir, and nothing else', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const dir = join(t.dir, 'logs');
    mkdirSync(dir);
    for (const f of ['events.jsonl', 'heartbeats.jsonl', segmentName(900), segmentName(20), 'ROOT.txt', 'events-copy.jsonl']) writeFileSync(join(dir, f), '');
    expect(listSegments(dir).map((s) => s.lastSeq)).toEqual([20, 900]);
    expect((await listJournalFiles(dir)).map((f) => `${f.name}:${f.path.split('/').pop()}`)).toEqual([
      'events:events.jsonl',
      `heartbeats:${segmentName(20)}`,
      `heartbeats:${segmentName(900)}`,
      'heartbeats:heartbeats.jsonl',
    ]);
    expect((await listJournalFiles(dir, new Set(['events']))).map((f) => f.name)).toEqual(['events']);
  });
});
