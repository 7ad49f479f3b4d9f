/**
 * Streams that say when they end. A middleware that must act when a streaming response ends (the SSE cap releases
 * its slot) would otherwise wrap the body in a second ReadableStream only to notice the end, and every event to
 * every client would then pass through two streams. A stream whose owner already knows its end (sseResponse)
 * announces it here, keyed by the body stream object (a Response rebuilt around the same body keeps it).
 */
interface EndState {
  ended: boolean;
  listeners: Array<() => void>;
}

const states = new WeakMap<ReadableStream<Uint8Array>, EndState>();

/** Called by a stream's owner when it creates it; returns the function to call once it has ended (idempotent). */
export function announceStreamEnd(body: ReadableStream<Uint8Array>): () => void {
  const state: EndState = { ended: false, listeners: [] };
  states.set(body, state);
  return () => {
    if (state.ended) return;
    state.ended = true;
    for (const fn of state.listeners.splice(0)) fn();
  };
}

/**
 * Runs `fn` once when `body` ends (at once if it already has), for a stream that announces its end; false (and
 * nothing registered) for any other stream.
 */
export function whenStreamEnds(body: ReadableStream<Uint8Array>, fn: () => void): boolean {
  const state = states.get(body);
  if (!state) return false;
  if (state.ended) fn();
  else state.listeners.push(fn);
  return true;
}
