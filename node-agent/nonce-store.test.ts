import { afterEach, describe, expect, it } from 'vitest';
import { appendFileSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openNonceStore } from './nonce-store.js';
import { tempDir } from '../test/helpers.js';

const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));
const file = () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  return join(t.dir, 'command-nonces.jsonl');
};
const receipt = (id: string) => ({ payload: { command_id: id } }) as never;

describe('nonce store', () => {
  it('remembers nonces and receipts across reopen, in a 0600 file', () => {
    const f = file();
    let now = 1_000_000;
    const a = openNonceStore({ file: f, now: () => now });
    a.record('aa'.repeat(16), 'cmd-1', now + 60_000);
    a.storeReceipt('cmd-1', now + 60_000, receipt('cmd-1'));
    a.close();
    expect(statSync(f).mode & 0o777).toBe(0o600);
    const b = openNonceStore({ file: f, now: () => now });
    expect(b.get('aa'.repeat(16))).toEqual({ commandId: 'cmd-1', expiresMs: now + 60_000 });
    expect(b.receipt('cmd-1')).toEqual(receipt('cmd-1'));
    expect(b.has('bb'.repeat(16))).toBe(false);
    b.close();
  });

  it('prunes entries past expiry + retention and compacts the file', () => {
    const f = file();
    let now = 1_000_000;
    const s = openNonceStore({ file: f, now: () => now, retainMs: 1000, compactAfter: 10 });
    for (let i = 0; i < 50; i++) s.record(i.toString(16).padStart(32, '0'), `cmd-${i}`, now + (i < 45 ? 0 : 100_000));
    now += 2000;
    expect(s.prune()).toBe(45);
    expect(s.size).toBe(5);
    expect(readFileSync(f, 'utf8').trim().split('\n')).toHaveLength(5);
    s.record('ff'.repeat(16), 'cmd-x', now + 100_000); // appends go to the new file
    s.close();
    const again = openNonceStore({ file: f, now: () => now, retainMs: 1000 });
    expect(again.size).toBe(6);
    expect(again.has('ff'.repeat(16))).toBe(true);
    again.close();
  });

  it('tolerates a torn last line and keeps later records on their own line', () => {
    const f = file();
    const s = openNonceStore({ file: f });
    s.record('aa'.repeat(16), 'cmd-1', Date.now() + 60_000);
    s.close();
    appendFileSync(f, '{"t":"n","n":"bb');
    const t = openNonceStore({ file: f });
    t.record('cc'.repeat(16), 'cmd-3', Date.now() + 60_000);
    t.close();
    const u = openNonceStore({ file: f });
    expect([u.has('aa'.repeat(16)), u.has('cc'.repeat(16)), u.size]).toEqual([true, true, 2]);
    u.close();
  });
});
