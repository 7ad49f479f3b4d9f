/** Resolves in a later turn of the event loop (after pending I/O callbacks): how long-running work gives way to requests. */
export const nextTurn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));
