/**
 * `vaultmesh logs view`: every matching envelope of the log dir in seq order, streamed (constant memory on
 * multi-GB journals), as aligned human lines or as the exact journal lines (--json).
 */
import type { Writable } from 'node:stream';
import { journalsForFilter, matchesFilter, type LogFilter } from './filters.js';
import { scanJournals, StopScan } from './journal-files.js';
import { createLineWriter } from './line-writer.js';

/** Room for a UUID or an agent's heartbeat id; longer ids push the line on. */
const ID_WIDTH = 36;

export interface ViewOptions {
  dir: string;
  filter: LogFilter;
  json: boolean;
  /** Human lines start with the envelope id (what `vaultmesh ledger prove` takes besides the seq). */
  ids?: boolean;
  colour: boolean;
  skipCorrupt: boolean;
  out: Writable;
  warn: (message: string) => void;
}

export interface ViewResult {
  printed: number;
  skippedCorrupt: number;
  tornTails: number;
  /** The reader closed the pipe before the end (e.g. `| head`). */
  readerGone: boolean;
}

export async function viewLogs(opts: ViewOptions): Promise<ViewResult> {
  const { filter } = opts;
  const writer = createLineWriter(opts.out);
  let printed = 0;
  // The human formatter (and the kind registry it describes bodies with) only for human output: --json passes bytes.
  const format = opts.json ? undefined : await import('./format.js');
  const actions = format?.createCommandActionMemo();
  const scan = await scanJournals({
    dir: opts.dir,
    journals: journalsForFilter(filter),
    skipCorrupt: opts.skipCorrupt,
    warn: opts.warn,
    // The line writer copies the bytes into its batch before the next line is read.
    reuseBuffers: true,
    // --json: most lines need only seq, kind, node and time, so bodies are parsed only when a filter reads them.
    // Human lines describe every body they print, from plain envelopes (the describer spreads them).
    lazyBodies: opts.json,
    visit: (entry) => {
      actions?.see(entry.envelope);
      if (!matchesFilter(entry.envelope, filter)) return;
      printed++;
      // --json passes the stored bytes through untouched: what jq sees is exactly what the ledger hashed.
      const human = (): string => {
        const line = format!.formatHuman(entry.envelope, { colour: opts.colour, describe: actions!.context });
        return opts.ids ? `${format!.sanitize(entry.envelope.id).padEnd(ID_WIDTH)}  ${line}` : line;
      };
      const pending = writer.line(opts.json ? entry.line.bytes : human());
      if (printed === filter.limit) throw new StopScan();
      return pending;
    },
  });
  try {
    await writer.flush();
  } catch (err) {
    if (!(err instanceof StopScan)) throw err;
  }
  return { printed, skippedCorrupt: scan.skippedCorrupt, tornTails: scan.tornTails, readerGone: writer.closed };
}
