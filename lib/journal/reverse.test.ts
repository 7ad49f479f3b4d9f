import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLinesBackward } from './reverse.js';
import { cleanupAfterEach, tempDir } from '../../test/helpers.js';

const onCleanup = cleanupAfterEach();

async function backward(text: string | Buffer, stopAfter = Infinity): Promise<string[]> {
  const t = tempDir();
  onCleanup(t.cleanup);
  const f = join(t.dir, 'j.jsonl');
  writeFileSync(f, text);
  const out: string[] = [];
  await readLinesBackward(f, (l) => {
    out.push(l.toString('utf8'));
    return out.length < stopAfter;
  });
  return out;
}

describe('readLinesBackward', () => {
  it.each([
    ['empty file', '', []],
    ['one line', 'a\n', ['a']],
    ['lines newest first', 'a\nb\nc\n', ['c', 'b', 'a']],
    ['a torn last line is not a line', 'a\nb\n{"torn', ['b', 'a']],
    ['only a torn line', '{"torn', []],
  ])('%s', async (_name, text, expected) => {
    expect(await backward(text)).toEqual(expected);
  });

  it('crosses chunk boundaries (lines longer and shorter than a chunk) and stops when told', async () => {
    const lines = Array.from({ length: 300 }, (_, i) => `${i}:${'x'.repeat((i * 7919) % 150_000)}`);
    const all = await backward(lines.join('\n') + '\n');
    expect(all).toEqual([...lines].reverse());
    expect(await backward(lines.join('\n') + '\n', 3)).toEqual(lines.slice(-3).reverse());
  });

  it('a missing file has no lines', async () => {
    const out: Buffer[] = [];
    await readLinesBackward('/nonexistent/x.jsonl', (l) => void out.push(l));
    expect(out).toEqual([]);
  });
});
