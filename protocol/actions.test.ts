import { describe, expect, it } from 'vitest';
import { parseActionArgs } from './actions.js';

describe('parseActionArgs', () => {
  it.each([
    ['ping', {}, { ok: true, args: {} }],
    ['collect-journal', { unit: 'nginx.service' }, { ok: true, args: { unit: 'nginx.service', lines: 100 } }],
    ['collect-journal', { unit: 'nginx.service', lines: '20' }, { ok: true, args: { unit: 'nginx.service', lines: 20 } }],
    ['shell', { cmd: 'id' }, { ok: false, code: 'UNKNOWN_ACTION' }],
    ['__proto__', {}, { ok: false, code: 'UNKNOWN_ACTION' }],
    ['ping', { extra: 1 }, { ok: false, code: 'INVALID_ARGS' }],
    ['service-restart', { unit: '--force' }, { ok: false, code: 'INVALID_ARGS' }],
    ['collect-journal', { unit: 'x.service', lines: 5000 }, { ok: false, code: 'INVALID_ARGS' }],
  ])('%s %j', (action, args, expected) => {
    expect(parseActionArgs(action, args)).toMatchObject(expected);
  });

  it('says which argument is wrong', () => {
    const r = parseActionArgs('service-status', { unit: '-x' });
    expect(r).toMatchObject({ ok: false, code: 'INVALID_ARGS', message: expect.stringContaining('service-status args.unit') });
  });
});
