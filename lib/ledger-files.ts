/**
 * The two reads of ledger files that the center (ledger load) and the CLI (`vaultmesh ledger`) share; the formats
 * themselves are pure, in protocol/ledger-files.ts.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { basename } from 'node:path';
import { archiveSegmentsOf, parseProofChain, type ArchiveSegment, type ProofChain } from '../protocol/ledger-files.js';

/** Reads a chain file or archive segment; undefined when it does not exist yet. Throws LEDGER_CORRUPT on a bad one. */
export function readProofChain(path: string): ProofChain | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parseProofChain(text, basename(path));
}

/** The archive segments of a chain file in `dir`, in chain order; [] if there are none (or no dir). */
export function listArchiveSegments(dir: string, chainFile: string): ArchiveSegment[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return archiveSegmentsOf(names, chainFile);
}
