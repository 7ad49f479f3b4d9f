/**
 * Check `file-integrity`: SHA-256 (plus size, mode and owner) of a configured list of files, compared with a
 * baseline taken at the first scan and kept in the agent state dir (`integrity-baseline.json`, 0600, written
 * atomically). Content drift and disappearance are `high`; permission/owner drift is `medium`.
 *
 * The baseline is never rewritten to accept a drift: the finding stays open until an operator re-baselines
 * (deletes the file). Paths added to the configuration later are added to the baseline on their first scan.
 * A baseline that does not parse is reported, not silently replaced, since resetting it would hide tampering.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomicSync } from '../../lib/atomic-file.js';
import type { Finding } from '../../protocol/scan.js';
import { sha256HexSchema } from '../../protocol/hex.js';
import { createFinding, describeError, errnoCode } from './finding.js';

export const FILE_INTEGRITY_CHECK = 'file-integrity';
export const BASELINE_FILE = 'integrity-baseline.json';

export interface FileIntegrityOptions {
  paths: readonly string[];
  stateDir: string;
  now: () => Date;
  /** Only the first maxFileBytes of a file are hashed (its full size is still recorded and compared). */
  maxFileBytes?: number;
  signal?: AbortSignal;
}

const fileStateSchema = z.discriminatedUnion('exists', [
  z
    .object({
      exists: z.literal(true),
      sha256: sha256HexSchema,
      size: z.number().int().nonnegative(),
      /** True when only the first `hashed_bytes` were hashed. */
      truncated: z.boolean(),
      mode: z.number().int().nonnegative(),
      uid: z.number().int().nonnegative(),
      gid: z.number().int().nonnegative(),
    })
    .strict(),
  z.object({ exists: z.literal(false) }).strict(),
]);
export type FileState = z.infer<typeof fileStateSchema>;

export const baselineSchema = z
  .object({
    v: z.literal(1),
    created_at: z.string(),
    updated_at: z.string(),
    max_file_bytes: z.number().int().positive(),
    files: z.record(z.string().min(1).max(4096), fileStateSchema),
  })
  .strict();
export type IntegrityBaseline = z.infer<typeof baselineSchema>;

const DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024;

/** Streams the first `maxBytes` of a file through SHA-256 (never reading it whole into memory). */
export async function hashFile(path: string, maxBytes: number, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  const stream = createReadStream(path, { start: 0, end: maxBytes - 1, ...(signal ? { signal } : {}) });
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function readFileState(path: string, maxBytes: number, signal?: AbortSignal): Promise<FileState> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return { exists: false };
    throw err;
  }
  if (!st.isFile()) throw new Error(`${path} is not a regular file`);
  const sha256 = await hashFile(path, maxBytes, signal);
  return { exists: true, sha256, size: st.size, truncated: st.size > maxBytes, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
}

type LoadedBaseline = { ok: true; baseline: IntegrityBaseline | undefined } | { ok: false; reason: string };

async function loadBaseline(file: string): Promise<LoadedBaseline> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return { ok: true, baseline: undefined };
    return { ok: false, reason: describeError(err) };
  }
  try {
    const parsed = baselineSchema.safeParse(JSON.parse(text));
    return parsed.success ? { ok: true, baseline: parsed.data } : { ok: false, reason: parsed.error.issues[0]?.message ?? 'invalid' };
  } catch (err) {
    return { ok: false, reason: describeError(err) };
  }
}

const octal = (mode: number): string => mode.toString(8).padStart(4, '0');

export async function checkFileIntegrity(options: FileIntegrityOptions): Promise<Finding[]> {
  const file = join(options.stateDir, BASELINE_FILE);
  const loaded = await loadBaseline(file);
  if (!loaded.ok) {
    return [
      createFinding({
        check: FILE_INTEGRITY_CHECK,
        severity: 'high',
        title: 'integrity baseline unreadable',
        detail: `${file} cannot be used (${loaded.reason}). It is left untouched; delete it to take a new baseline once the host is trusted.`,
        evidence: { path: file },
      }),
    ];
  }
  const previous = loaded.baseline;
  // A baseline hashed with a different byte limit is not comparable for big files; keep its limit.
  const maxBytes = previous?.max_file_bytes ?? options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const nowIso = options.now().toISOString();
  const findings: Finding[] = [];
  const added: string[] = [];
  const files: Record<string, FileState> = { ...(previous?.files ?? {}) };

  for (const path of options.paths) {
    options.signal?.throwIfAborted();
    let current: FileState;
    try {
      current = await readFileState(path, maxBytes, options.signal);
    } catch (err) {
      if (options.signal?.aborted) throw err;
      findings.push(createFinding({ check: FILE_INTEGRITY_CHECK, severity: 'info', title: 'file not checked', detail: `${path}: ${describeError(err)}`, evidence: { path } }));
      continue;
    }
    const before = previous?.files[path];
    if (!before) {
      files[path] = current;
      added.push(path);
      continue;
    }
    findings.push(...compare(path, before, current));
  }

  if (added.length > 0) {
    const baseline: IntegrityBaseline = {
      v: 1,
      created_at: previous?.created_at ?? nowIso,
      updated_at: nowIso,
      max_file_bytes: maxBytes,
      files,
    };
    writeFileAtomicSync(file, `${JSON.stringify(baseline, null, 2)}\n`, 0o600);
    findings.push(
      createFinding({
        check: FILE_INTEGRITY_CHECK,
        severity: 'info',
        title: previous ? 'integrity baseline extended' : 'integrity baseline created',
        detail: `${added.length} file(s) recorded in ${file}; later scans report drift against it.`,
        evidence: { baseline: file, files: added.length, paths: added.join('\n') },
      }),
    );
  }
  return findings;
}

/** Pure comparison of one file's baseline and current state. */
export function compare(path: string, before: FileState, now: FileState): Finding[] {
  if (!before.exists && !now.exists) return [];
  if (before.exists && !now.exists) {
    return [createFinding({ check: FILE_INTEGRITY_CHECK, severity: 'high', title: 'file missing', detail: `${path} existed at baseline and is gone.`, evidence: { path, baseline_sha256: before.sha256 } })];
  }
  if (!before.exists && now.exists) {
    return [createFinding({ check: FILE_INTEGRITY_CHECK, severity: 'medium', title: 'file appeared', detail: `${path} did not exist at baseline and now does.`, evidence: { path, sha256: now.sha256, size: now.size } })];
  }
  if (!before.exists || !now.exists) return []; // unreachable; narrows the types
  const out: Finding[] = [];
  if (before.sha256 !== now.sha256 || before.size !== now.size) {
    out.push(
      createFinding({
        check: FILE_INTEGRITY_CHECK,
        severity: 'high',
        title: 'file content drift',
        detail: `${path} changed since the baseline (size ${before.size} → ${now.size}).`,
        evidence: { path, baseline_sha256: before.sha256, sha256: now.sha256, baseline_size: before.size, size: now.size },
      }),
    );
  }
  if (before.mode !== now.mode || before.uid !== now.uid || before.gid !== now.gid) {
    out.push(
      createFinding({
        check: FILE_INTEGRITY_CHECK,
        severity: 'medium',
        title: 'file permission drift',
        detail: `${path} mode/owner changed: ${octal(before.mode)} ${before.uid}:${before.gid} → ${octal(now.mode)} ${now.uid}:${now.gid}.`,
        evidence: { path, baseline_mode: octal(before.mode), mode: octal(now.mode), baseline_uid: before.uid, uid: now.uid, baseline_gid: before.gid, gid: now.gid },
      }),
    );
  }
  return out;
}
