/**
 * Check `listening-sockets`: TCP listeners and bound UDP sockets from /proc/net/{tcp,tcp6,udp,udp6}, compared with
 * an allowlist of (proto, port). Reading procfs needs no tools and no privileges (ss/netstat are often absent).
 *
 * procfs address format (net/ipv4/tcp_ipv4.c, net/ipv6/tcp_ipv6.c): `ADDR:PORT` in hex.
 *  - PORT is printed after ntohs(), so it reads directly as a number.
 *  - An IPv4 ADDR is the 32-bit network-order address printed with %08X as a *native* integer: on little-endian
 *    hosts (x86, arm64) the bytes come out reversed, so `0100007F` is 127.0.0.1.
 *  - An IPv6 ADDR is the 16-byte address printed as four 32-bit words, each with %08X as a native integer: every
 *    4-byte group is reversed on little-endian hosts, but the groups stay in order. `00000000000000000000000001000000`
 *    is ::1 and `0000000000000000FFFF00000100007F` is ::ffff:127.0.0.1.
 * The byte order is the host's (os.endianness()), injectable for tests.
 */
import { open } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';
import type { Finding } from '../../protocol/scan.js';
import { createFinding, errnoCode, sourceUnavailable } from './finding.js';

export const LISTENING_SOCKETS_CHECK = 'listening-sockets';

export type SocketProto = 'tcp' | 'udp';
export interface AllowedSocket {
  proto: SocketProto;
  port: number;
}

export interface Listener {
  proto: SocketProto;
  family: 'ipv4' | 'ipv6';
  address: string;
  port: number;
  uid: number;
  inode: number;
}

export interface ListeningSocketsOptions {
  procRoot: string;
  allowlist: readonly AllowedSocket[];
  endianness?: 'LE' | 'BE';
  /** Stop reading a table after this many lines (a busy server can have hundreds of thousands of connections). */
  maxLines?: number;
  maxFindings?: number;
  signal?: AbortSignal;
}

const TCP_LISTEN = '0A';

function swap32(hex8: string): string {
  return hex8.slice(6, 8) + hex8.slice(4, 6) + hex8.slice(2, 4) + hex8.slice(0, 2);
}

/** Decodes a procfs IPv4 address (8 hex digits) to dotted quad. */
export function decodeIpv4(hex: string, order: 'LE' | 'BE' = endianness()): string {
  const be = order === 'LE' ? swap32(hex) : hex;
  return [0, 2, 4, 6].map((i) => parseInt(be.slice(i, i + 2), 16)).join('.');
}

/** Decodes a procfs IPv6 address (32 hex digits) to RFC 5952 text (lowercase, longest zero run compressed). */
export function decodeIpv6(hex: string, order: 'LE' | 'BE' = endianness()): string {
  let be = '';
  for (let i = 0; i < 32; i += 8) be += order === 'LE' ? swap32(hex.slice(i, i + 8)) : hex.slice(i, i + 8);
  const groups = [];
  for (let i = 0; i < 32; i += 4) groups.push(parseInt(be.slice(i, i + 4), 16));
  // IPv4-mapped addresses read better in their mixed form.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${decodeIpv4(be.slice(24, 32), 'BE')}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j += 1;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const text = groups.map((g) => g.toString(16));
  if (bestLen < 2) return text.join(':');
  return `${text.slice(0, bestStart).join(':')}::${text.slice(bestStart + bestLen).join(':')}`;
}

/**
 * Parses one data line of a /proc/net/{tcp,udp}[6] table into a listener, or undefined when the socket is not
 * listening: TCP must be in state LISTEN (0A); UDP counts as listening when it is bound to a port and not
 * connected (remote address all zeros, remote port 0), which is how a UDP server looks.
 */
export function parseProcNetLine(line: string, proto: SocketProto, order: 'LE' | 'BE' = endianness()): Listener | undefined {
  const fields = line.trim().split(/\s+/);
  // sl local rem st tx:rx tr:when retrnsmt uid timeout inode …
  if (fields.length < 10 || !/^\d+:$/.test(fields[0]!)) return undefined;
  const [localAddr, localPort] = (fields[1] ?? '').split(':');
  const [remAddr, remPort] = (fields[2] ?? '').split(':');
  const state = fields[3]!.toUpperCase();
  if (!localAddr || !localPort || remAddr === undefined || remPort === undefined) return undefined;
  const family = localAddr.length === 32 ? 'ipv6' : localAddr.length === 8 ? 'ipv4' : undefined;
  if (!family || !/^[0-9A-Fa-f]+$/.test(localAddr)) return undefined;
  if (proto === 'tcp' && state !== TCP_LISTEN) return undefined;
  if (proto === 'udp' && (!/^0+$/.test(remAddr) || parseInt(remPort, 16) !== 0)) return undefined;
  const port = parseInt(localPort, 16);
  if (!Number.isInteger(port) || port === 0) return undefined;
  return {
    proto,
    family,
    address: family === 'ipv4' ? decodeIpv4(localAddr, order) : decodeIpv6(localAddr, order),
    port,
    uid: Number(fields[7]),
    inode: Number(fields[9]),
  };
}

/** Loopback listeners are reachable only from this host, which makes an unexpected one less urgent. */
export function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.');
}

async function readTable(path: string, proto: SocketProto, order: 'LE' | 'BE', maxLines: number, signal?: AbortSignal): Promise<Listener[] | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined; // e.g. IPv6 disabled: no tcp6/udp6
    throw err;
  }
  const listeners: Listener[] = [];
  try {
    // Streamed line by line: the table holds every connection, not just listeners, so it can be many megabytes.
    let n = 0;
    for await (const line of fh.readLines({ encoding: 'utf8' })) {
      if (n++ === 0) continue; // header
      if (n > maxLines) break;
      signal?.throwIfAborted();
      const l = parseProcNetLine(line, proto, order);
      if (l) listeners.push(l);
    }
  } finally {
    await fh.close();
  }
  return listeners;
}

export async function listListeners(options: Omit<ListeningSocketsOptions, 'allowlist' | 'maxFindings'>): Promise<{ listeners: Listener[]; tablesRead: number }> {
  const order = options.endianness ?? endianness();
  const maxLines = options.maxLines ?? 200_000;
  const tables: Array<[string, SocketProto]> = [
    ['tcp', 'tcp'],
    ['tcp6', 'tcp'],
    ['udp', 'udp'],
    ['udp6', 'udp'],
  ];
  const seen = new Map<string, Listener>();
  let tablesRead = 0;
  for (const [file, proto] of tables) {
    const rows = await readTable(join(options.procRoot, 'net', file), proto, order, maxLines, options.signal);
    if (!rows) continue;
    tablesRead += 1;
    // SO_REUSEPORT and per-thread UDP sockets show the same (proto, address, port) many times.
    for (const l of rows) seen.set(`${l.proto}|${l.address}|${l.port}`, seen.get(`${l.proto}|${l.address}|${l.port}`) ?? l);
  }
  const cmp = (x: string, y: string): number => (x < y ? -1 : x > y ? 1 : 0); // code-point order, locale-independent
  const listeners = [...seen.values()].sort((a, b) => cmp(a.proto, b.proto) || a.port - b.port || cmp(a.address, b.address));
  return { listeners, tablesRead };
}

export async function checkListeningSockets(options: ListeningSocketsOptions): Promise<Finding[]> {
  const maxFindings = options.maxFindings ?? 100;
  const { listeners, tablesRead } = await listListeners(options);
  if (tablesRead === 0) {
    return [sourceUnavailable(LISTENING_SOCKETS_CHECK, `no socket tables under ${join(options.procRoot, 'net')} (procfs not mounted?).`)];
  }
  const allowed = new Set(options.allowlist.map((a) => `${a.proto}|${a.port}`));
  const unexpected = listeners.filter((l) => !allowed.has(`${l.proto}|${l.port}`));
  const findings = unexpected.slice(0, maxFindings).map((l) => {
    const loopback = isLoopback(l.address);
    const where = l.family === 'ipv6' ? `[${l.address}]:${l.port}` : `${l.address}:${l.port}`;
    return createFinding({
      check: LISTENING_SOCKETS_CHECK,
      severity: loopback ? 'low' : 'medium',
      title: `unexpected ${l.proto} listener on port ${l.port}`,
      detail: `${l.proto.toUpperCase()} ${where} is listening${loopback ? ' (loopback only)' : ''} and ${l.proto}/${l.port} is not in the allowlist. Socket inode ${l.inode}, uid ${l.uid}.`,
      evidence: { proto: l.proto, family: l.family, address: l.address, port: l.port, uid: l.uid, inode: l.inode, loopback },
    });
  });
  if (unexpected.length > maxFindings) {
    findings.push(
      createFinding({
        check: LISTENING_SOCKETS_CHECK,
        severity: 'medium',
        title: `${unexpected.length - maxFindings} more unexpected listeners`,
        detail: `${unexpected.length} listeners are not in the allowlist; only the first ${maxFindings} are listed individually.`,
        evidence: { total: unexpected.length, listed: maxFindings },
      }),
    );
  }
  return findings;
}
