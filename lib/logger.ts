/** The logger the daemons are handed: three levels, one line each; tests pass one that records. */
export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export const consoleLogger: Logger = {
  info: (m) => console.log(m),
  warn: (m) => console.warn(`WARNING: ${m}`),
  error: (m) => console.error(`ERROR: ${m}`),
};
