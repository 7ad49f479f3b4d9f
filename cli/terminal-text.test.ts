import { describe, expect, it } from 'vitest';
import { sanitize, terminalText } from './terminal-text.js';
import { renderJson, renderJsonLine, renderRecord, renderTable } from './output.js';

// eslint-disable-next-line no-control-regex
const ACTIVE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

describe('terminal text', () => {
  it('escapes C0, DEL and C1; a single line also flattens newlines and tabs', () => {
    expect(sanitize('a\u001b[2Jb\nc\td')).toBe('a\\x1b[2Jb c d');
    expect(sanitize('\u001b]52;c;eA==\u0007')).toBe('\\x1b]52;c;eA==\\x07');
    expect(sanitize('x\u009b31m\u0090\u009f\u007f\u0000')).toBe('x\\x9b31m\\x90\\x9f\\x7f\\x00');
    expect(sanitize('münchen ✓ 💥')).toBe('münchen ✓ 💥');
  });

  it('keeps the lines of a block, CRLF as LF, a lone CR escaped', () => {
    expect(terminalText('one\r\ntwo\tx\rthree\u001b[2K\n')).toBe('one\ntwo\tx\\x0dthree\\x1b[2K\n');
  });

  it('tables, records and JSON carry no active character', () => {
    const hostile = '\u001b]0;t\u0007\u009b2J\u007f\nfake row';
    const table = renderTable([{ a: hostile, b: [hostile], c: { k: hostile } }], ['a', 'b', 'c']);
    expect(table.split('\n')).toHaveLength(3); // header, one row, the final newline: no injected row
    expect(ACTIVE.test(table)).toBe(false);
    const record = renderRecord([['k', hostile], ['o', { k: hostile }]], 4);
    expect(record.split('\n')).toHaveLength(3);
    expect(ACTIVE.test(record)).toBe(false);
    for (const json of [renderJson({ k: hostile }), renderJsonLine({ k: hostile })]) {
      expect(ACTIVE.test(json.replace(/\n/g, ''))).toBe(false);
      expect(JSON.parse(json).k).toBe(hostile);
    }
  });
});
