import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LineSource, mergeJournals } from './reader.js';
import { cleanupAfterEach, tempDir } from '../../test/helpers.js';

const onCleanup = cleanupAfterEach();

function file(content: string | Buffer): string {
  const t = tempDir();
  onCleanup(t.cleanup);
  const f = join(t.dir, 'j.jsonl');
  writeFileSync(f, content);
  return f;
}

/** Every line (copied at once, as the reuse contract asks), its number and offset, and the torn tail. */
async function readAll(path: string, reuseBuffers: boolean, from = 0, firstLineNo = 1) {
  const src = new LineSource(path, from, firstLineNo, { reuseBuffers });
  const lines: Array<[string, number, number]> = [];
  for (let batch = await src.nextBatch(); batch; batch = await src.nextBatch()) {
    for (const l of batch) lines.push([l.bytes.toString('latin1'), l.lineNo, l.offset]);
  }
  return { lines, tail: src.tail && [src.tail.bytes.toString('latin1'), src.tail.lineNo, src.tail.offset] };
}

describe('LineSource with reused buffers', () => {
  const MB = 1 << 20;
  const cases: Record<string, string> = {
    empty: '',
    'one line': 'a\n',
    'a torn tail only': 'abc',
    'empty lines': '\n\n\nx\n\n',
    // Lines of every length around the 1 MiB read size, so some cross a chunk boundary at every position.
    'lines across chunk boundaries': Array.from({ length: 700 }, (_, i) => 'x'.repeat((i * 7919) % 9000)).join('\n') + '\ntorn',
    'a line longer than two chunks': `first\n${'y'.repeat(2.5 * MB)}\nlast\n`,
    'a newline exactly at the chunk end': `${'z'.repeat(MB - 1)}\n${'w'.repeat(MB - 1)}\nend`,
  };
  for (const [name, content] of Object.entries(cases)) {
    it(`gives the same lines, numbers, offsets and tail as fresh buffers: ${name}`, async () => {
      const f = file(content);
      const fresh = await readAll(f, false);
      const reused = await readAll(f, true);
      expect(reused).toEqual(fresh);
      expect(fresh.lines.map((l) => l[0]).join('\n') + (fresh.lines.length ? '\n' : '') + (fresh.tail?.[0] ?? '')).toBe(content);
    });
  }

  it('resumes from an offset like fresh buffers', async () => {
    const content = Array.from({ length: 5000 }, (_, i) => `line ${i} ${'p'.repeat(i % 700)}`).join('\n') + '\n';
    const f = file(content);
    const from = content.indexOf('line 1234 ');
    expect(await readAll(f, true, from, 1235)).toEqual(await readAll(f, false, from, 1235));
  });

  it('mergeJournals visits the same envelopes with reuseBuffers', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const env = (seq: number, pad: number) => JSON.stringify({ author: 'node:n', body: { pad: 'q'.repeat(pad) }, id: `e${seq}`, kind: 'note', node_id: 'n', seq, ts: '2026-11-01T00:00:00.000Z', v: 1 });
    const a = join(t.dir, 'a.jsonl');
    const b = join(t.dir, 'b.jsonl');
    writeFileSync(a, Array.from({ length: 3000 }, (_, i) => env(2 * i + 1, (i * 131) % 1500)).join('\n') + '\n');
    writeFileSync(b, Array.from({ length: 3000 }, (_, i) => env(2 * i + 2, (i * 71) % 1500)).join('\n') + '\n');
    const seen = async (reuseBuffers: boolean) => {
      const out: string[] = [];
      await mergeJournals([a, b], { reuseBuffers, visit: (e) => void out.push(`${e.envelope.seq}:${e.line.bytes.toString('utf8').length}`) });
      return out;
    };
    const reused = await seen(true);
    expect(reused).toHaveLength(6000);
    expect(reused).toEqual(await seen(false));
  });
});

describe('LineSource one line at a time', () => {
  // What the merge does: takeLine until it has none, then fill; the line stays valid until the fill after the next.
  async function takeAll(path: string, reuseBuffers: boolean) {
    const src = new LineSource(path, 0, 1, { reuseBuffers });
    const lines: Array<[string, number, number]> = [];
    let previous: { bytes: Buffer; text: string } | undefined;
    for (;;) {
      const l = src.takeLine();
      if (!l) {
        if (!(await src.fill())) break;
        // The last line taken before this read is still intact (the read after it may reuse its buffer).
        if (previous) expect(previous.bytes.toString('latin1') === previous.text).toBe(true);
        previous = undefined;
        continue;
      }
      const text = l.bytes.toString('latin1');
      previous = { bytes: l.bytes, text };
      lines.push([text, l.lineNo, l.offset]);
    }
    return { lines, tail: src.tail && [src.tail.bytes.toString('latin1'), src.tail.lineNo, src.tail.offset] };
  }

  const MB = 1 << 20;
  const cases: Record<string, string> = {
    empty: '',
    'a torn tail only': 'abc',
    'empty lines': '\n\n\nx\n\n',
    'lines across read boundaries': Array.from({ length: 700 }, (_, i) => 'x'.repeat((i * 7919) % 90000)).join('\n') + '\ntorn',
    'lines longer than the buffers, growing twice in a row': `a\n${'y'.repeat(300_000)}\n${'v'.repeat(1.1 * MB)}\nb\n`,
  };
  for (const [name, content] of Object.entries(cases)) {
    it(`gives the lines, numbers, offsets and tail of batches: ${name}`, async () => {
      const f = file(content);
      const batches = await readAll(f, false);
      expect(await takeAll(f, true)).toEqual(batches);
      expect(await takeAll(f, false)).toEqual(batches);
    });
  }
});

describe('mergeJournals with lazyBodies', () => {
  it('visits the same envelopes and reports the same corrupt lines as full parsing', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const env = (seq: number) => JSON.stringify({ author: 'node:n', body: { id: `hb-${seq}`, n: seq % 7 }, id: `e${seq}`, kind: seq % 5 ? 'heartbeat' : 'scan', node_id: `n${seq % 3}`, seq, ts: '2026-11-01T00:00:00.000Z', v: 1 });
    const a = join(t.dir, 'a.jsonl');
    const b = join(t.dir, 'b.jsonl');
    const aLines = Array.from({ length: 2000 }, (_, i) => env(2 * i + 1));
    aLines.splice(100, 0, '{"this is": not json', JSON.stringify({ v: 1, seq: 5000 }));
    writeFileSync(a, aLines.join('\n') + '\n');
    writeFileSync(b, Array.from({ length: 2000 }, (_, i) => env(2 * i + 2)).join('\n') + '\n');
    const seen = async (lazyBodies: boolean) => {
      const out: unknown[] = [];
      const bad: string[] = [];
      await mergeJournals([a, b], {
        reuseBuffers: true,
        lazyBodies,
        onCorrupt: (c) => {
          bad.push(`${c.line.lineNo}: ${c.reason}`);
          return 'skip';
        },
        visit: (e) => void out.push([e.envelope.seq, e.envelope.kind, e.envelope.node_id, e.envelope.ts, e.envelope.body]),
      });
      return { out, bad };
    };
    const lazy = await seen(true);
    expect(lazy.out).toHaveLength(4000);
    expect(lazy.bad).toHaveLength(2);
    expect(lazy).toEqual(await seen(false));
  });
});
