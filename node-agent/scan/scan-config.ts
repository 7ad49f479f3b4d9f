/**
 * Scan configuration: what each check inspects and its limits. `scanConfigSchema` validates operator input (a
 * config file or command args) at the edge; `defaultScanConfig()` is a sensible Linux server baseline.
 */
import { z } from 'zod';
import { detailsFromZodIssues, VaultMeshError } from '../../protocol/errors.js';
import { checkNameSchema } from '../../protocol/scan.js';

const absolutePath = z.string().min(1).max(4096).regex(/^\//, 'must be an absolute path');
const percent = z.number().min(0).max(100);
const positiveInt = z.number().int().positive();

export const scanConfigSchema = z
  .object({
    /** Mount points whose block and inode usage is checked. */
    mounts: z.array(absolutePath).max(64),
    diskThresholds: z.object({ mediumPercent: percent, highPercent: percent }).strict(),
    /** (proto, port) pairs allowed to listen; anything else is a finding. */
    socketAllowlist: z
      .array(z.object({ proto: z.enum(['tcp', 'udp']), port: z.number().int().min(1).max(65535) }).strict())
      .max(1024),
    /** Files whose SHA-256, size, mode and owner are compared with the first-scan baseline. */
    integrityPaths: z.array(absolutePath).max(1024),
    integrityMaxFileBytes: positiveInt,
    worldWritableRoots: z.array(absolutePath).max(64),
    walkLimits: z
      .object({
        maxEntries: positiveInt.max(10_000_000),
        maxDepth: positiveInt.max(256),
        maxFindings: positiveInt.max(400),
        skip: z.array(absolutePath).max(256),
        sameFilesystem: z.boolean(),
      })
      .strict(),
    clockSkewSeconds: z.object({ mediumSeconds: z.number().positive(), highSeconds: z.number().positive() }).strict(),
    rebootStaleDays: z.number().nonnegative(),
    /** Per-check timeouts; `default` applies to checks not named. */
    timeoutsMs: z
      .object({ default: positiveInt.max(600_000) })
      .catchall(positiveInt.max(600_000))
      .refine((t) => Object.keys(t).every((k) => k === 'default' || checkNameSchema.safeParse(k).success), 'keys must be check names'),
    /** Checks not to run (by name). */
    disabledChecks: z.array(checkNameSchema).max(64),
  })
  .strict();

export type ScanConfig = z.infer<typeof scanConfigSchema>;

/** Defaults for a Linux server. Returns a fresh object each time so callers may modify it. */
export function defaultScanConfig(): ScanConfig {
  return {
    mounts: ['/', '/var', '/home', '/tmp'],
    diskThresholds: { mediumPercent: 80, highPercent: 90 },
    socketAllowlist: [
      { proto: 'tcp', port: 22 }, // sshd
      { proto: 'udp', port: 68 }, // DHCPv4 client
      { proto: 'udp', port: 546 }, // DHCPv6 client
      { proto: 'udp', port: 123 }, // NTP
      { proto: 'udp', port: 323 }, // chronyd command port (loopback)
    ],
    integrityPaths: [
      '/etc/passwd',
      '/etc/shadow',
      '/etc/group',
      '/etc/gshadow',
      '/etc/sudoers',
      '/etc/ssh/sshd_config',
      '/etc/hosts',
      '/etc/crontab',
      '/etc/pam.d/common-auth',
      '/etc/pam.d/sshd',
    ],
    integrityMaxFileBytes: 64 * 1024 * 1024,
    worldWritableRoots: ['/etc', '/usr', '/opt', '/srv', '/var', '/root', '/home'],
    walkLimits: {
      maxEntries: 200_000,
      maxDepth: 16,
      maxFindings: 50,
      skip: ['/proc', '/sys', '/dev', '/run', '/var/lib/docker', '/var/lib/containers', '/var/lib/lxcfs', '/snap'],
      sameFilesystem: true,
    },
    clockSkewSeconds: { mediumSeconds: 30, highSeconds: 300 },
    rebootStaleDays: 7,
    timeoutsMs: { default: 10_000, 'world-writable': 60_000, 'file-integrity': 30_000 },
    disabledChecks: [],
  };
}

/**
 * Validates operator input layered over the defaults (top-level keys replace, `walkLimits`, `diskThresholds`,
 * `clockSkewSeconds` and `timeoutsMs` merge), so a config file only names what it changes.
 */
export function parseScanConfig(input: unknown = {}): ScanConfig {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new VaultMeshError('VALIDATION_ERROR', 'scan config must be an object', { details: [{ path: '', message: 'expected an object' }] });
  }
  const base = defaultScanConfig();
  const partial = input as Record<string, unknown>;
  const merge = (key: 'walkLimits' | 'diskThresholds' | 'clockSkewSeconds' | 'timeoutsMs'): unknown =>
    typeof partial[key] === 'object' && partial[key] !== null ? { ...base[key], ...(partial[key] as object) } : (partial[key] ?? base[key]);
  const parsed = scanConfigSchema.safeParse({
    ...base,
    ...partial,
    walkLimits: merge('walkLimits'),
    diskThresholds: merge('diskThresholds'),
    clockSkewSeconds: merge('clockSkewSeconds'),
    timeoutsMs: merge('timeoutsMs'),
  });
  if (!parsed.success) {
    throw new VaultMeshError('VALIDATION_ERROR', 'invalid scan config', { details: detailsFromZodIssues(parsed.error.issues) });
  }
  return parsed.data;
}
