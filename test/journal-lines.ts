/** Reads every envelope of a log dir, merged by seq: a plain line scan with JSON.parse, independent of the readers under test. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Envelope } from '../protocol/envelope.js';

export function readLogDir(dir: string): Envelope[] {
  const out: Envelope[] = [];
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.jsonl')) continue;
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) if (line) out.push(JSON.parse(line) as Envelope);
  }
  return out.sort((a, b) => a.seq - b.seq);
}
