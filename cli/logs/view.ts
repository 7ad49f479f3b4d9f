/**
 * `vaultmesh logs view`: every matching envelope of the log dir in seq order, streamed (constant memory on
 * multi-GB journals), as aligned human lines or as the exact journal lines (--json).
 */
import type { Writable } from 'node:stream';
import { createCommandActionMemo, formatHuman, sanitize } from './format.js';

/** Room for a UUID or an agent's heartbeat id; longer ids push the line on. */
const ID_WIDTH = 36;
import { journalsForFilter, matchesFilter, type LogFilter } from './filters.js';
import { scanJournals, StopScan } from './journal-files.js';
import { createLineWriter } from './line-writer.js';

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
  const actions = createCommandActionMemo();
  const scan = await scanJournals({
    dir: opts.dir,
    journals: journalsForFilter(filter),
    skipCorrupt: opts.skipCorrupt,
    warn: opts.warn,
    // The line writer copies the bytes into its batch before the next line is read.
    reuseBuffers: true,
    visit: (entry) => {
      if (!opts.json) actions.see(entry.envelope);
      if (!matchesFilter(entry.envelope, filter)) return;
      printed++;
      // --json passes the stored bytes through untouched: what jq sees is exactly what the ledger hashed.
      const human = (): string => {
        const line = formatHuman(entry.envelope, { colour: opts.colour, describe: actions.context });
        return opts.ids ? `${sanitize(entry.envelope.id).padEnd(ID_WIDTH)}  ${line}` : line;
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
