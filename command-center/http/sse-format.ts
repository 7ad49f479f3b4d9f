/**
 * Pure Server-Sent Events formatting (WHATWG HTML §9.2). Event names and ids must not contain CR or LF, or a
 * client would parse an attacker-chosen field; data is split on line breaks into several `data:` lines.
 */
import type { Envelope } from '../../protocol/envelope.js';

export interface SseMessage {
  event?: string;
  id?: string | number;
  data: string;
  retry?: number;
}

export function formatSseMessage(msg: SseMessage): string {
  let out = '';
  if (msg.event !== undefined) out += `event: ${singleLine(msg.event, 'event')}\n`;
  if (msg.id !== undefined) out += `id: ${singleLine(String(msg.id), 'id')}\n`;
  if (msg.retry !== undefined) out += `retry: ${Math.max(0, Math.floor(msg.retry))}\n`;
  for (const line of msg.data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return out + '\n';
}

export function formatSseComment(text: string): string {
  return `: ${text.replace(/[\r\n]+/g, ' ')}\n\n`;
}

function singleLine(value: string, field: string): string {
  if (/[\r\n\0]/.test(value)) throw new TypeError(`SSE ${field} must not contain CR, LF or NUL`);
  return value;
}

// One published envelope goes to every stream as the same object: its message is serialised and encoded once,
// not once per client (at 1,000 clients that was 1,000 JSON.stringify + encode per heartbeat). Weak, so an entry
// lives exactly as long as the envelope (the bus's resume ring holds the last few thousand).
const envelopeMessages = new WeakMap<Envelope, Uint8Array>();
const utf8 = new TextEncoder();

/** `event: <kind>`, `id: <seq>`, `data: <envelope JSON>` as UTF-8 bytes; computed once per envelope object. */
export function envelopeEventBytes(env: Envelope): Uint8Array {
  let bytes = envelopeMessages.get(env);
  if (!bytes) {
    bytes = utf8.encode(formatSseMessage({ event: env.kind, id: env.seq, data: JSON.stringify(env) }));
    envelopeMessages.set(env, bytes);
  }
  return bytes;
}
