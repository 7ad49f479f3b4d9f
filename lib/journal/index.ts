/**
 * The one way into JSONL journals, for the center and the CLI alike: file names and heartbeat segments
 * (`files.ts`), the line splitter and the seq-ordered k-way merge (`reader.ts`), binary search by seq or time
 * (`seek.ts`), newest-first reads (`reverse.ts`) and the `tail -F` follower (`follow.ts`). Nothing outside this
 * folder imports those modules directly (test/module-rules.test.ts).
 */
export { JOURNAL_FILES, journalNameOf, journalPaths, listJournalFiles, listSegments, segmentLastSeq, segmentName, type JournalFile, type JournalName, type Segment } from './files.js';
export { LineSource, mergeJournals, parseJournalLine, type CorruptLine, type JournalEntry, type MergeOptions, type MergeResult, type RawLine } from './reader.js';
export { scanEnvelopeLine, ScannedEnvelope } from './envelope-scan.js';
export { seekJournal } from './seek.js';
export { readLinesBackward } from './reverse.js';
export { classifyChange, pinJournals, splitLines, type FileChange, type FollowOptions, type FollowedEntry, type PinnedJournals } from './follow.js';
