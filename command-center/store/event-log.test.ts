import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../protocol/canonical-json.js';
import type { Envelope } from '../../protocol/envelope.js';
import { createEventLog } from './event-log.js';
import { seekJournal } from '../../lib/journal/index.js';
import { createJsonlStore } from './jsonl-store.js';
import type { EnvelopeStore } from './envelope-store.js';
import { quietLogger } from '../../test/helpers.js';
import { requirePostgres, startPostgres, type TestPostgres } from '../../test/postgres.js';
import { createPostgresStore } from './postgres-store.js';
import { copyStore } from '../../cli/store-copy.js';

const dir = mkdtempSync(join(tmpdir(), 'vm-eventlog-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = Date.parse('2025-01-01T00:00:00Z');
const env = (seq: number, kind: string, extra: Record<string, unknown> = {}): Envelope => ({
  v: 1, id: `e${seq}`, seq, ts: new Date(T0 + seq * 1000).toISOString(), kind, author: 'a', body: { text: `m${seq}`, ...extra },
});

describe('seekJournal', () => {
  // Lines longer than the probe size and a torn tail.
  const file = join(dir, 'seek.jsonl');
  const lines = Array.from({ length: 200 }, (_, i) => env(i * 2 + 1, 'note', i % 7 === 0 ? { pad: 'x'.repeat(9000) } : {}));
  writeFileSync(file, lines.map((e) => canonicalJson(e) + '\n').join('') + '{"v":1,"torn');
  const offsets = [0];
  for (const e of lines) offsets.push(offsets.at(-1)! + Buffer.byteLength(canonicalJson(e)) + 1);

  it.each([
    [0, 0],
    [1, 1],
    [2, 1],
    [3, 2],
    [200, 100],
    [398, 199],
    [399, 200],
    [10_000, 200],
  ])('first line with seq > %i is line %i', async (after, index) => {
    expect(await seekJournal(file, (e) => e.seq > after)).toBe(offsets[index]);
    // Wherever the binary search hands over to reading the last lines in order, down to the byte or not at all.
    for (const scanBytes of [0, 1, 100, 9000, 20_000, 1 << 20]) expect(await seekJournal(file, (e) => e.seq > after, scanBytes)).toBe(offsets[index]);
  });

  it('a damaged line counts as "not yet" in the in-order scan too', async () => {
    const damaged = join(dir, 'seek-damaged.jsonl');
    const text = lines.slice(0, 20).map((e) => canonicalJson(e) + '\n');
    text[10] = '{not json\n';
    writeFileSync(damaged, text.join(''));
    const at = (i: number) => text.slice(0, i).reduce((n, l) => n + Buffer.byteLength(l), 0);
    for (const scanBytes of [0, 1 << 20]) {
      expect(await seekJournal(damaged, (e) => e.seq > lines[9]!.seq, scanBytes)).toBe(at(11)); // past the damaged line
    }
  });

  it('a missing file seeks to 0', async () => {
    expect(await seekJournal(join(dir, 'nope.jsonl'), () => true)).toBe(0);
  });
});

// The same journals read through each store: for PostgreSQL, copied into a database first (vaultmesh store copy).
const stores: Array<[string, (logDir: string) => Promise<EnvelopeStore>]> = [['jsonl', async (logDir) => createJsonlStore({ dir: logDir, log: quietLogger, onCommit: () => {} })]];
if (requirePostgres('createEventLog on PostgreSQL')) {
  let server: TestPostgres | undefined;
  afterAll(() => server?.stop());
  stores.push([
    'postgres',
    async (logDir) => {
      server ??= await startPostgres();
      const url = await server.newDatabase();
      await copyStore({ kind: 'jsonl', dir: logDir }, { kind: 'postgres', url });
      return createPostgresStore({ url, log: quietLogger, onCommit: () => {} });
    },
  ]);
}

describe.each(stores)('createEventLog (%s store)', (storeName, openStore) => {
  const logDir = join(dir, `logs-${storeName}`);
  const all: Envelope[] = [];
  for (let seq = 1; seq <= 60; seq++) all.push({ ...env(seq, seq % 3 === 0 ? 'heartbeat' : seq % 5 === 0 ? 'incident' : 'note', { node: seq % 2 }), ...(seq % 2 ? { node_id: '1' } : {}) });
  const byFile = (kinds: string[]) => all.filter((e) => kinds.includes(e.kind)).map((e) => canonicalJson(e) + '\n').join('');
  mkdirSync(logDir);
  writeFileSync(join(logDir, 'events.jsonl'), byFile(['note', 'incident']));
  writeFileSync(join(logDir, 'heartbeats.jsonl'), byFile(['heartbeat']));
  // The history pages read the files through the JSONL store, as in the center.
  let store: EnvelopeStore;
  let log: ReturnType<typeof createEventLog>;
  beforeAll(async () => {
    store = await openStore(logDir);
    await store.replay(() => {});
    log = createEventLog({ store, window: 4, lastSeq: () => 60 });
    for (const e of all) log.add(e);
  });
  afterAll(() => store.close());

  it.each([
    ['everything from the start', { limit: 10 }, all.slice(0, 10), 'journal'],
    ['recent, all journals, from memory', { since: { seq: 56 }, limit: 10 }, all.slice(56), 'memory'],
    ['one kind from the journal', { kinds: ['incident'], limit: 3 }, all.filter((e) => e.kind === 'incident').slice(0, 3), 'journal'],
    ['by time', { since: { tsMs: T0 + 30_000 }, kinds: ['heartbeat'], limit: 2 }, [all[29]!, all[32]!], 'journal'],
    ['recent by time from memory', { since: { tsMs: T0 + 59_000 }, limit: 5 }, all.slice(58), 'memory'],
  ] as const)('%s', async (_name, q, expected, source) => {
    const page = await log.query({ ...q, kinds: 'kinds' in q ? [...q.kinds] : undefined } as never);
    expect(page.items.map((e) => e.seq)).toEqual(expected.map((e) => e.seq));
    expect(page.source).toBe(source);
    expect(page.next).toBe(page.items.length === q.limit ? String(expected.at(-1)!.seq) : null);
  });

  it('never returns what is not committed yet (seq above lastSeq)', async () => {
    const l = createEventLog({ store, window: 100, lastSeq: () => 50 });
    for (const e of all) l.add(e);
    const page = await l.query({ since: { seq: 45 }, limit: 100 });
    expect(page.items.map((e) => e.seq)).toEqual([46, 47, 48, 49, 50]);
  });

  it.each([
    ['the newest 5, from memory', { limit: 5 }, [60, 59, 58, 57, 56], 'memory'],
    ['the newest 8 reach past a window: from the journals', { limit: 8 }, [60, 59, 58, 57, 56, 55, 54, 53], 'journal'],
    ['newest incidents', { kinds: ['incident'], limit: 2 }, [55, 50], 'journal'],
    ['paging back with before', { before: 50, limit: 3 }, [49, 48, 47], 'journal'],
    ['newest after a seq, all in memory', { since: { seq: 55 }, limit: 10 }, [60, 59, 58, 57, 56], 'memory'],
  ] as const)('newest first: %s', async (_name, q, expected, source) => {
    const page = await log.query({ ...q, kinds: 'kinds' in q ? [...q.kinds] : undefined, order: 'desc' } as never);
    expect(page.items.map((e) => e.seq)).toEqual(expected);
    expect(page.source).toBe(source);
    expect(page.next).toBe(page.items.length === q.limit ? String(expected.at(-1)) : null);
  });

  it('newest first agrees with a plain filter of every envelope, whatever the query', async () => {
    const kindsChoices = [undefined, ['note'], ['heartbeat'], ['incident', 'heartbeat']];
    for (const limit of [1, 3, 7, 100]) {
      for (const before of [undefined, 61, 40, 5, 1]) {
        for (const kinds of kindsChoices) {
          for (const since of [undefined, { seq: 20 }, { seq: 58 }, { tsMs: T0 + 45_000 }]) {
            for (const nodeId of [undefined, '1']) {
              const expected = all
                .filter((e) => (before === undefined || e.seq < before) && (!kinds || kinds.includes(e.kind)))
                .filter((e) => !since || ('seq' in since ? e.seq > since.seq : Date.parse(e.ts) >= since.tsMs))
                .filter((e) => nodeId === undefined || e.node_id === nodeId)
                .map((e) => e.seq)
                .reverse()
                .slice(0, limit);
              const page = await log.query({ limit, order: 'desc', ...(before !== undefined ? { before } : {}), ...(kinds ? { kinds } : {}), ...(since ? { since } : {}), ...(nodeId ? { nodeId } : {}) });
              expect(page.items.map((e) => e.seq), JSON.stringify({ limit, before, kinds, since, nodeId })).toEqual(expected);
            }
          }
        }
      }
    }
  });

  it('keeps at most `window` envelopes per journal', () => {
    expect(log.stats()).toMatchObject({ events: { retained: 4 }, heartbeats: { retained: 4 }, scans: { retained: 0, evictedUpToSeq: 0 } });
  });
});

describe('createEventLog: newest first with a scan bound', () => {
  // Notes every second seq in the events journal, with one node's note every 100th; scans (another journal) between.
  const journals: Record<string, Envelope[]> = { events: [], scans: [] };
  for (let seq = 1; seq <= 2000; seq++) {
    if (seq % 2) journals.events!.push(env(seq, 'note'));
    else journals.scans!.push(env(seq, 'scan'));
  }
  const withNode = (e: Envelope) => (e.seq % 100 === 1 ? { ...e, node_id: 'n1' } : e);
  journals.events = journals.events!.map(withNode);
  journals.scans = journals.scans!.map(withNode);
  let read = 0;
  const store = {
    tail: async () => {},
    readNewestFirst: async (journal: string, visit: (l: { envelope: Envelope }) => boolean) => {
      const list = journals[journal] ?? [];
      for (let i = list.length - 1; i >= 0; i--) {
        read++;
        if (!visit({ envelope: list[i]! })) return;
      }
    },
  } as unknown as Pick<EnvelopeStore, 'tail' | 'readNewestFirst'>;
  // A window of 1 per journal: everything older comes from the store.
  const log = createEventLog({ store, window: 1, lastSeq: () => 2000 });
  for (const e of [...journals.events!, ...journals.scans!].sort((a, b) => a.seq - b.seq)) log.add(e);

  it('stops each journal after scanLimit envelopes, answers what is complete, and pages on without a gap', async () => {
    const want = [...journals.events!, ...journals.scans!].filter((e) => e.node_id === 'n1').map((e) => e.seq).sort((a, b) => b - a);
    expect(want).toHaveLength(20);
    const got: number[] = [];
    let before: number | undefined;
    let pages = 0;
    for (;;) {
      read = 0;
      const page = await log.query({ order: 'desc', nodeId: 'n1', kinds: ['note', 'scan'], limit: 5, scanLimit: 150, ...(before !== undefined ? { before } : {}) });
      expect(read).toBeLessThanOrEqual(2 * 150 + 2000); // bounded per journal (skipping newer lines is not counted)
      got.push(...page.items.map((e) => e.seq));
      pages++;
      if (!page.next) break;
      expect(Number(page.next)).toBeLessThan(before ?? Infinity);
      before = Number(page.next);
      expect(pages).toBeLessThan(100);
    }
    expect(got).toEqual(want); // every match once, newest first, none skipped at the cuts
    expect(pages).toBeGreaterThan(4); // the bound cut pages short
  });

  it('without a bound the same query reads until the page is full', async () => {
    const page = await log.query({ order: 'desc', nodeId: 'n1', kinds: ['note', 'scan'], limit: 5 });
    expect(page.items.map((e) => e.seq)).toEqual([1901, 1801, 1701, 1601, 1501]);
    expect(page.next).toBe('1501');
  });
});
