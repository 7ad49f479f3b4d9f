/**
 * The group-commit loop both stores share: appends queue while a batch is being written, and one drain at a time
 * takes everything that waited (the next turn of the event loop first, so appends made in the same tick share a
 * batch). When a drain ends with more queued, the next one starts.
 */
export interface DrainLoop {
  /** Starts a drain unless one is running (a running one picks up what was queued). */
  kick(): void;
  /** Resolves once no drain is running and none is due. */
  idle(): Promise<void>;
}

export function createDrainLoop(drain: () => Promise<void>, pending: () => boolean): DrainLoop {
  let running: Promise<void> | undefined;
  function kick(): void {
    if (running) return;
    running = new Promise<void>((resolve) => setImmediate(resolve))
      .then(drain)
      .finally(() => {
        running = undefined;
        if (pending()) kick();
      });
  }
  return {
    kick,
    async idle() {
      while (running) await running;
    },
  };
}
