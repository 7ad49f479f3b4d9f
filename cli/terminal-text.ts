/**
 * Text the CLI prints comes from agents and bots (hostnames, facts, receipt output, notes, labels): control
 * characters are made visible so a crafted string cannot drive the operator's terminal (clear the screen, rewrite
 * the title, write the clipboard with OSC 52, hide what follows). C0 controls, DEL and the C1 range U+0080–U+009F
 * (8-bit CSI, OSC, ST) are shown escaped as `\xNN`, so an escape sequence reads as `\x1b[2J`, not as an effect.
 */

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
// eslint-disable-next-line no-control-regex
const CONTROL_BUT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

const hex = (c: string) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/** One line of text (a table cell, a field): newlines and tabs become spaces, other controls are escaped. */
export function sanitize(text: string): string {
  return text.replace(CONTROL, (c) => (c === '\n' || c === '\t' ? ' ' : hex(c)));
}

/** A block of text (command output): lines and tabs stay, CRLF becomes LF, every other control is escaped. */
export function terminalText(text: string): string {
  return text.replace(/\r\n/g, '\n').replace(CONTROL_BUT_LINES, hex);
}

