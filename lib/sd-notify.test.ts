import { describe, expect, it } from 'vitest';
import { createSdNotifier, statusLine, watchdogInterval } from './sd-notify.js';
import { manualTimers } from '../test/helpers.js';

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
    const manual = manualTimers();
    const sd = createSdNotifier({ env: { NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '200000', WATCHDOG_PID: '42' }, pid: 42, run: async (a) => void sent.push(a), timers: manual.timers });
    expect(sd.watchdogIntervalMs).toBe(100);
    await sd.ready('listening on\nhttp://x');
    sd.startWatchdog();
    manual.advance(99);
    expect(sent.filter((a) => a[0] === 'WATCHDOG=1')).toHaveLength(0);
    for (let i = 0; i < 3; i++) {
      manual.advance(100);
      await new Promise((r) => setImmediate(r)); // let the ping settle so the next one is not seen as in flight
    }
    expect(sent.filter((a) => a[0] === 'WATCHDOG=1')).toHaveLength(3);
    sd.stopWatchdog();
    expect(manual.active).toBe(0);
    manual.advance(1000);
    await sd.stopping();
    expect(sent[0]).toEqual(['READY=1', 'STATUS=listening on http://x']);
    expect(sent.filter((a) => a[0] === 'WATCHDOG=1')).toHaveLength(3);
    expect(sent.at(-1)).toEqual(['STOPPING=1']);
  });

  it('skips a ping while unhealthy and does not stack pings behind a stalled systemd-notify', async () => {
    const sent: string[][] = [];
    let release: (() => void) | undefined;
    let stall = false;
    let healthy = false;
    const manual = manualTimers();
    const run = (a: string[]) => {
      sent.push(a);
      return stall ? new Promise<void>((r) => (release = r)) : Promise.resolve();
    };
    const sd = createSdNotifier({ env: { NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '200000' }, run, timers: manual.timers });
    sd.startWatchdog(() => healthy);
    manual.advance(300);
    expect(sent).toEqual([]);
    healthy = true;
    stall = true;
    manual.advance(300); // three periods, one ping: it never returns
    expect(sent).toEqual([['WATCHDOG=1']]);
    release!();
    await new Promise((r) => setImmediate(r));
    stall = false;
    manual.advance(100);
    expect(sent).toHaveLength(2);
    sd.stopWatchdog();
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
