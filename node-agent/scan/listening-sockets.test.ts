import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkListeningSockets, decodeIpv4, decodeIpv6, listListeners, parseProcNetLine } from './listening-sockets.js';

// Real-format /proc/net tables as a little-endian (x86-64) kernel prints them.
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21410 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   110        0 23511 1 0000000000000000 100 0 0 10 0
   2: 0F02000A:0016 0202000A:C4E2 01 00000000:00000000 02:0008C52A 00000000     0        0 45873 4 0000000000000000 20 4 30 10 -1
   3: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 51234 1 0000000000000000 100 0 0 10 0
   4: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 51235 1 0000000000000000 100 0 0 10 0
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21412 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:0CEA 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   112        0 24410 1 0000000000000000 100 0 0 10 0
   2: B80D0120000000000000000005000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000    33        0 24999 1 0000000000000000 100 0 0 10 0
   3: B80D0120000000000000000005000000:01BB B80D0120000000000000000009000000:D431 01 00000000:00000000 02:00000E2D 00000000    33        0 25000 2 0000000000000000 20 4 30 10 -1
`;
const UDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  139: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 18200 2 0000000000000000 0
  410: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 19111 2 0000000000000000 0
  777: 0F02000A:A1B2 08080808:0035 01 00000000:00000000 00:00000000 00000000  1000        0 60001 2 0000000000000000 0
`;
const UDP6 = `   sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  500: 000080FE000000000000000001000000:0222 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 18300 2 0000000000000000 0
`;

let proc: string;
beforeEach(() => {
  proc = mkdtempSync(join(tmpdir(), 'vm-proc-'));
  mkdirSync(join(proc, 'net'));
  writeFileSync(join(proc, 'net', 'tcp'), TCP);
  writeFileSync(join(proc, 'net', 'tcp6'), TCP6);
  writeFileSync(join(proc, 'net', 'udp'), UDP);
  writeFileSync(join(proc, 'net', 'udp6'), UDP6);
});
afterEach(() => rmSync(proc, { recursive: true, force: true }));

describe('address decoding', () => {
  it.each([
    ['0100007F', 'LE', '127.0.0.1'],
    ['00000000', 'LE', '0.0.0.0'],
    ['0F02000A', 'LE', '10.0.2.15'],
    ['7F000001', 'BE', '127.0.0.1'],
  ] as const)('IPv4 %s (%s) → %s', (hex, order, text) => {
    expect(decodeIpv4(hex, order)).toBe(text);
  });

  it.each([
    ['00000000000000000000000000000000', 'LE', '::'],
    ['00000000000000000000000001000000', 'LE', '::1'],
    ['000080FE000000000000000001000000', 'LE', 'fe80::1'],
    ['B80D0120000000000000000005000000', 'LE', '2001:db8::5'],
    ['0000000000000000FFFF00000100007F', 'LE', '::ffff:127.0.0.1'],
    ['20010DB8000000000000000000000005', 'BE', '2001:db8::5'],
    ['20010DB8000100000000000100000001', 'BE', '2001:db8:1::1:0:1'],
    ['20010DB8000000010000000000000001', 'BE', '2001:db8:0:1::1'],
  ] as const)('IPv6 %s (%s) → %s', (hex, order, text) => {
    expect(decodeIpv6(hex, order)).toBe(text);
  });
});

describe('parseProcNetLine', () => {
  it('ignores the header, non-listening TCP and connected UDP', () => {
    const lines = TCP.split('\n');
    expect(parseProcNetLine(lines[0]!, 'tcp', 'LE')).toBeUndefined();
    expect(parseProcNetLine(lines[3]!, 'tcp', 'LE')).toBeUndefined(); // ESTABLISHED
    expect(parseProcNetLine(UDP.split('\n')[3]!, 'udp', 'LE')).toBeUndefined(); // connected
    expect(parseProcNetLine(lines[1]!, 'tcp', 'LE')).toEqual({ proto: 'tcp', family: 'ipv4', address: '0.0.0.0', port: 22, uid: 0, inode: 21410 });
  });
});

describe('listListeners', () => {
  it('reads all four tables, deduplicating reuseport sockets', async () => {
    const { listeners, tablesRead } = await listListeners({ procRoot: proc, endianness: 'LE' });
    expect(tablesRead).toBe(4);
    expect(listeners.map((l) => `${l.proto} ${l.address} ${l.port}`)).toEqual([
      'tcp 0.0.0.0 22',
      'tcp :: 22',
      'tcp 2001:db8::5 443',
      'tcp ::1 3306',
      'tcp 127.0.0.1 5432',
      'tcp 0.0.0.0 8080',
      'udp 127.0.0.53 53',
      'udp 0.0.0.0 68',
      'udp fe80::1 546',
    ]);
  });

  it('tolerates missing IPv6 tables', async () => {
    rmSync(join(proc, 'net', 'tcp6'));
    rmSync(join(proc, 'net', 'udp6'));
    const { tablesRead, listeners } = await listListeners({ procRoot: proc, endianness: 'LE' });
    expect(tablesRead).toBe(2);
    expect(listeners).toHaveLength(5);
  });

  it('stops after maxLines', async () => {
    const { listeners } = await listListeners({ procRoot: proc, endianness: 'LE', maxLines: 2 });
    // one data line per table
    expect(listeners.map((l) => l.port).sort((a, b) => a - b)).toEqual([22, 22, 68, 546]);
  });
});

describe('checkListeningSockets', () => {
  it('flags listeners outside the allowlist; loopback-only ones are low', async () => {
    const findings = await checkListeningSockets({
      procRoot: proc,
      endianness: 'LE',
      allowlist: [
        { proto: 'tcp', port: 22 },
        { proto: 'udp', port: 68 },
        { proto: 'udp', port: 546 },
      ],
    });
    const byPort = Object.fromEntries(findings.map((f) => [`${f.evidence.proto}/${f.evidence.port}/${f.evidence.address}`, f.severity]));
    expect(byPort).toEqual({
      'tcp/443/2001:db8::5': 'medium',
      'tcp/3306/::1': 'low',
      'tcp/5432/127.0.0.1': 'low',
      'tcp/8080/0.0.0.0': 'medium',
      'udp/53/127.0.0.53': 'low',
    });
    const https = findings.find((f) => f.evidence.port === 443)!;
    expect(https).toMatchObject({ check: 'listening-sockets', title: 'unexpected tcp listener on port 443', evidence: { family: 'ipv6', uid: 33, inode: 24999 } });
    expect(https.detail).toContain('[2001:db8::5]:443');
  });

  it('is a source-unavailable info without procfs', async () => {
    const [f] = await checkListeningSockets({ procRoot: join(proc, 'none'), allowlist: [] });
    expect(f).toMatchObject({ severity: 'info', title: 'source unavailable' });
  });

  it('caps findings', async () => {
    const findings = await checkListeningSockets({ procRoot: proc, endianness: 'LE', allowlist: [], maxFindings: 2 });
    expect(findings).toHaveLength(3);
    expect(findings[2]).toMatchObject({ title: '7 more unexpected listeners', evidence: { total: 9 } });
  });
});
