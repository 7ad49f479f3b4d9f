/**
 * The console's Eta renderer over `views/`. The same partials render full pages and SSE fragments (with
 * `oob: true` they carry `hx-swap-oob`). The views directory is found relative to this module, so it works from the
 * TypeScript sources (command-center/console → ../../views) and from dist/ (dist/command-center/console →
 * ../../../views).
 */
import { Eta } from 'eta';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export function defaultViewsDir(moduleUrl: string = import.meta.url): string {
  const here = dirname(fileURLToPath(moduleUrl));
  for (const rel of ['../../views', '../../../views']) {
    const dir = resolve(here, rel);
    if (existsSync(join(dir, 'console.eta'))) return dir;
  }
  throw new Error(`views/ not found next to ${here}`);
}

export type PartialName =
  | 'mission-bar'
  | 'node-row'
  | 'node-list'
  | 'pending'
  | 'node-detail'
  | 'attention'
  | 'findings'
  | 'feed'
  | 'feed-item'
  | 'command-result';

export interface ConsoleRenderer {
  page(data: object): string;
  login(data: object): string;
  /** A small standalone page (a form result for browsers without script). */
  notice(data: object): string;
  partial(name: PartialName, data: object): string;
  readonly viewsDir: string;
}

export function createConsoleRenderer(opts: { viewsDir?: string; cache?: boolean } = {}): ConsoleRenderer {
  const viewsDir = opts.viewsDir ?? defaultViewsDir();
  const eta = new Eta({ views: viewsDir, cache: opts.cache ?? true, autoEscape: true });
  return {
    viewsDir,
    page: (data) => eta.render('./console', data),
    login: (data) => eta.render('./login', data),
    notice: (data) => eta.render('./notice', data),
    partial: (name, data) => eta.render(`./partials/${name}`, data),
  };
}
