/**
 * Reading a journal line without building it: a byte-level JSON check of the whole line that notes where the
 * envelope's top-level fields are, and an `Envelope` whose `seq`, `kind`, `node_id` and `ts` come from those bytes
 * while the rest (`body`, `id`, `author`...) is parsed only when first read.
 *
 * Why: `vaultmesh logs stats` and a filtered `logs view` need only those four fields of most lines (heartbeats), and
 * `JSON.parse` of a whole line costs more than the time. V8 interns every string value of up to 10 characters it
 * parses (`hb-1234567`, a short id, a status), and interned strings go straight to the old generation: a pass over
 * a multi-GB journal left tens of MB of them for the next full collection, which is why peak RSS grew with the
 * journals' size. The check here is as strict as `JSON.parse` (any line it refuses is handed to `JSON.parse` for the
 * verdict and its exact message), so a corrupt line is still reported wherever it is damaged.
 *
 * Pure: no IO. The lazy envelope reads the line's bytes when its body is first touched, so with reused read
 * buffers that must happen during the visit (as for `line.bytes`).
 */
import { ENVELOPE_VERSION } from '../../protocol/envelope-shape.js';
import type { Envelope } from '../../protocol/envelope.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Where a value sits in the line: [start, end) and its JSON type. */
const enum T {
  None = 0,
  String = 1,
  Number = 2,
  Object = 3,
  Other = 4,
}

/** The top-level fields `looksLikeEnvelope` checks, by position; filled by `scanEnvelopeLine`. */
class Spans {
  // For each field: type, start, end (strings: inside the quotes; `escaped` when a backslash is in them).
  v = T.None;
  vS = 0;
  vE = 0;
  id = T.None;
  seq = T.None;
  seqS = 0;
  seqE = 0;
  ts = T.None;
  tsS = 0;
  tsE = 0;
  tsEsc = false;
  kind = T.None;
  kindS = 0;
  kindE = 0;
  kindEsc = false;
  author = T.None;
  body = T.None;
  node = T.None;
  nodeS = 0;
  nodeE = 0;
  nodeEsc = false;
  reset(): void {
    this.v = this.id = this.seq = this.ts = this.kind = this.author = this.body = this.node = T.None;
  }
}

/** Scanner state for one line; module-level so a pass allocates nothing per line for it. */
let buf: Uint8Array = new Uint8Array(0);
let pos = 0;
let lastEscaped = false;
const spans = new Spans();

const isWs = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

function skipWs(end: number): void {
  while (pos < end && isWs(buf[pos]!)) pos++;
}

/** At an opening quote: moves past the closing one; false on a bad escape, a raw control character or no end. */
function skipString(end: number): boolean {
  pos++;
  lastEscaped = false;
  while (pos < end) {
    const c = buf[pos++]!;
    if (c === QUOTE) return true;
    if (c < 0x20) return false;
    if (c === BACKSLASH) {
      lastEscaped = true;
      if (pos >= end) return false;
      const e = buf[pos++]!;
      if (e === 0x75) {
        // \uXXXX
        if (pos + 4 > end) return false;
        for (let i = 0; i < 4; i++) if (!isHex(buf[pos++]!)) return false;
      } else if (!(e === QUOTE || e === BACKSLASH || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74)) {
        return false;
      }
    }
  }
  return false;
}

const isHex = (c: number): boolean => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

/** -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)? */
function skipNumber(end: number): boolean {
  if (buf[pos] === 0x2d) pos++;
  if (pos >= end) return false;
  if (buf[pos] === 0x30) pos++;
  else if (isDigit(buf[pos]!)) while (pos < end && isDigit(buf[pos]!)) pos++;
  else return false;
  if (pos < end && buf[pos] === 0x2e) {
    pos++;
    if (pos >= end || !isDigit(buf[pos]!)) return false;
    while (pos < end && isDigit(buf[pos]!)) pos++;
  }
  if (pos < end && (buf[pos] === 0x65 || buf[pos] === 0x45)) {
    pos++;
    if (pos < end && (buf[pos] === 0x2b || buf[pos] === 0x2d)) pos++;
    if (pos >= end || !isDigit(buf[pos]!)) return false;
    while (pos < end && isDigit(buf[pos]!)) pos++;
  }
  return true;
}

function skipLiteral(end: number, word: string): boolean {
  if (pos + word.length > end) return false;
  for (let i = 0; i < word.length; i++) if (buf[pos + i] !== word.charCodeAt(i)) return false;
  pos += word.length;
  return true;
}

/** Deeper than this, the line goes to JSON.parse (which has its own limit): the check keeps no stack. */
const MAX_DEPTH = 256;

/** Skips one value; returns its type, or T.None when it is not valid JSON. */
function skipValue(end: number, depth: number): T {
  if (pos >= end) return T.None;
  const c = buf[pos]!;
  if (c === QUOTE) return skipString(end) ? T.String : T.None;
  if (c === 0x7b || c === 0x5b) {
    if (depth >= MAX_DEPTH) return T.None;
    const close = c === 0x7b ? 0x7d : 0x5d;
    pos++;
    skipWs(end);
    if (pos < end && buf[pos] === close) {
      pos++;
      return c === 0x7b ? T.Object : T.Other;
    }
    for (;;) {
      if (c === 0x7b) {
        if (pos >= end || buf[pos] !== QUOTE || !skipString(end)) return T.None;
        skipWs(end);
        if (pos >= end || buf[pos] !== 0x3a) return T.None;
        pos++;
        skipWs(end);
      }
      if (skipValue(end, depth + 1) === T.None) return T.None;
      skipWs(end);
      if (pos >= end) return T.None;
      const d = buf[pos++]!;
      if (d === close) return c === 0x7b ? T.Object : T.Other;
      if (d !== 0x2c) return T.None;
      skipWs(end);
    }
  }
  if (c === 0x2d || isDigit(c)) return skipNumber(end) ? T.Number : T.None;
  if (c === 0x74) return skipLiteral(end, 'true') ? T.Other : T.None;
  if (c === 0x66) return skipLiteral(end, 'false') ? T.Other : T.None;
  if (c === 0x6e) return skipLiteral(end, 'null') ? T.Other : T.None;
  return T.None;
}

/** Whether buf[s, e) spells `name` (ASCII). */
function keyIs(s: number, e: number, name: string): boolean {
  if (e - s !== name.length) return false;
  for (let i = 0; i < name.length; i++) if (buf[s + i] !== name.charCodeAt(i)) return false;
  return true;
}

/**
 * Checks that `line` is one JSON object and notes its top-level envelope fields in `spans`. False when it is not
 * valid JSON, or when it is valid in a way this check does not follow (a top-level key with an escape, nesting
 * deeper than MAX_DEPTH): the caller then asks JSON.parse.
 */
function scanLine(line: Uint8Array): boolean {
  buf = line;
  pos = 0;
  const end = line.length;
  spans.reset();
  skipWs(end);
  if (pos >= end || buf[pos] !== 0x7b) return false;
  pos++;
  skipWs(end);
  if (pos < end && buf[pos] === 0x7d) {
    pos++;
    skipWs(end);
    return pos === end;
  }
  for (;;) {
    if (pos >= end || buf[pos] !== QUOTE) return false;
    const keyS = pos + 1;
    if (!skipString(end) || lastEscaped) return false;
    const keyE = pos - 1;
    skipWs(end);
    if (pos >= end || buf[pos] !== 0x3a) return false;
    pos++;
    skipWs(end);
    const valS = pos;
    const type = skipValue(end, 1);
    if (type === T.None) return false;
    const valE = pos;
    // A repeated key: JSON.parse keeps the last one, and so does this.
    switch (keyE - keyS) {
      case 1:
        if (buf[keyS] === 0x76) {
          spans.v = type;
          spans.vS = valS;
          spans.vE = valE;
        }
        break;
      case 2:
        if (keyIs(keyS, keyE, 'id')) spans.id = type;
        else if (keyIs(keyS, keyE, 'ts')) {
          spans.ts = type;
          spans.tsS = valS + 1;
          spans.tsE = valE - 1;
          spans.tsEsc = lastEscaped;
        }
        break;
      case 3:
        if (keyIs(keyS, keyE, 'seq')) {
          spans.seq = type;
          spans.seqS = valS;
          spans.seqE = valE;
        }
        break;
      case 4:
        if (keyIs(keyS, keyE, 'kind')) {
          spans.kind = type;
          spans.kindS = valS + 1;
          spans.kindE = valE - 1;
          spans.kindEsc = lastEscaped;
        } else if (keyIs(keyS, keyE, 'body')) spans.body = type;
        break;
      case 6:
        if (keyIs(keyS, keyE, 'author')) spans.author = type;
        break;
      case 7:
        if (keyIs(keyS, keyE, 'node_id')) {
          spans.node = type;
          spans.nodeS = valS + 1;
          spans.nodeE = valE - 1;
          spans.nodeEsc = lastEscaped;
        }
        break;
    }
    skipWs(end);
    if (pos >= end) return false;
    const d = buf[pos++]!;
    if (d === 0x7d) break;
    if (d !== 0x2c) return false;
    skipWs(end);
  }
  skipWs(end);
  return pos === end;
}

/** The value of a JSON number span, as JSON.parse would give it. */
function numberAt(line: Buffer, s: number, e: number): number {
  let n = 0;
  for (let i = s; i < e; i++) {
    const c = line[i]!;
    // Not plain digits (a sign, a fraction, an exponent): let Number() read it, as JSON.parse would.
    if (c < 0x30 || c > 0x39) return Number(line.toString('latin1', s, e));
    n = n * 10 + (c - 0x30);
  }
  return e - s > 15 ? Number(line.toString('latin1', s, e)) : n;
}

/** A string span's value; one with an escape is decoded by JSON.parse (rare in journals the center wrote). */
function stringAt(line: Buffer, s: number, e: number, escaped: boolean): string {
  return escaped ? (JSON.parse(line.toString('utf8', s - 1, e + 1)) as string) : line.toString('utf8', s, e);
}

/**
 * An envelope read from its line's bytes: `seq`, `kind`, `node_id` and `ts` are read at once, everything else
 * (body, id, author, on_behalf_of, v) by one JSON.parse of the line the first time one of them is read. Those are
 * getters, so a spread (`{ ...env }`) does not copy them: `toJSON()` gives the plain envelope.
 */
export class ScannedEnvelope implements Envelope {
  readonly seq: number;
  readonly kind: string;
  readonly ts: string;
  declare readonly node_id?: string;
  private parsed: Envelope | undefined;
  private bytes: Buffer | undefined;

  constructor(bytes: Buffer, seq: number, kind: string, ts: string, nodeId: string | undefined) {
    this.bytes = bytes;
    this.seq = seq;
    this.kind = kind;
    this.ts = ts;
    if (nodeId !== undefined) this.node_id = nodeId;
  }

  private full(): Envelope {
    if (!this.parsed) {
      this.parsed = JSON.parse(this.bytes!.toString('utf8')) as Envelope;
      this.bytes = undefined;
    }
    return this.parsed;
  }

  get v(): typeof ENVELOPE_VERSION {
    return ENVELOPE_VERSION;
  }
  get id(): string {
    return this.full().id;
  }
  get author(): string {
    return this.full().author;
  }
  get on_behalf_of(): string | undefined {
    return this.full().on_behalf_of;
  }
  get body(): Record<string, unknown> {
    return this.full().body;
  }

  /** The plain object (what JSON.parse gives), e.g. to keep beyond the visit or to serialise. */
  toJSON(): Envelope {
    return this.full();
  }
}

/**
 * The envelope on a journal line, read field by field; undefined when the line is not one that this check can
 * vouch for (not JSON, not an envelope, or JSON it does not follow). `looksLikeEnvelope`'s rules, on bytes.
 */
export function scanEnvelopeLine(line: Buffer): ScannedEnvelope | undefined {
  if (!scanLine(line)) return undefined;
  const s = spans;
  if (s.v !== T.Number || s.id !== T.String || s.seq !== T.Number || s.ts !== T.String || s.kind !== T.String) return undefined;
  if (s.author !== T.String || s.body !== T.Object || (s.node !== T.None && s.node !== T.String)) return undefined;
  if (numberAt(line, s.vS, s.vE) !== ENVELOPE_VERSION) return undefined;
  const seq = numberAt(line, s.seqS, s.seqE);
  if (!Number.isSafeInteger(seq) || seq <= 0) return undefined;
  const nodeId = s.node === T.String ? stringAt(line, s.nodeS, s.nodeE, s.nodeEsc) : undefined;
  return new ScannedEnvelope(line, seq, stringAt(line, s.kindS, s.kindE, s.kindEsc), stringAt(line, s.tsS, s.tsE, s.tsEsc), nodeId);
}
