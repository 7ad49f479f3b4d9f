import { describe, expect, it } from 'vitest';
import { createSdNotifier, statusLine, watchdogInterval } from './sd-notify.js';

describe('sd-notify', () => {
  it('is a no-op outside systemd', async () => {
    const sent: string[][] = [];
    const sd = createSdNotifier({ env: {}, run: async (a) => void sent.push(a) });
    await sd.ready('x');
    sd.startWatchdog();
    expect(sd.enabled).toBe(false);
    expect(sd.watchdogIntervalMs).toBeUndefined();
    expect(sent).toEqual([]);
  });

  it('sends READY, STATUS, STOPPING and WATCHDOG pings at half WATCHDOG_USEC', async () => {
    const sent: string[][] = [];
    const sd = createSdNotifier({ env: { NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '200000', WATCHDOG_PID: '42' }, pid: 42, run: async (a) => void sent.push(a) });
    expect(sd.watchdogIntervalMs).toBe(100);
    await sd.ready('listening on\nhttp://x');
    sd.startWatchdog();
    await new Promise((r) => setTimeout(r, 350));
    sd.stopWatchdog();
    await sd.stopping();
    expect(sent[0]).toEqual(['READY=1', 'STATUS=listening on http://x']);
    const pings = sent.filter((a) => a[0] === 'WATCHDOG=1').length;
    expect(pings).toBeGreaterThanOrEqual(2);
    expect(sent.at(-1)).toEqual(['STOPPING=1']);
  });

  it('does not ping when unhealthy, nor for another process', () => {
    expect(watchdogInterval({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '1' }, 2)).toBeUndefined();
    expect(watchdogInterval({ WATCHDOG_USEC: '30000000' }, 2)).toBe(15_000);
    expect(watchdogInterval({ WATCHDOG_USEC: 'x' }, 2)).toBeUndefined();
    expect(statusLine('a\r\nb')).toBe('STATUS=a b');
  });

  it('reports a failing systemd-notify through onError instead of throwing', async () => {
    const errors: unknown[] = [];
    const sd = createSdNotifier({ env: { NOTIFY_SOCKET: '/nonexistent/notify' }, run: async () => Promise.reject(new Error('boom')), onError: (e) => errors.push(e) });
    await sd.ready();
    expect(errors).toHaveLength(1);
  });
});
