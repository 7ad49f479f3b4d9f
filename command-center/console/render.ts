/**
 * The console's Eta renderer over `views/`. The same partials render full pages and SSE fragments (with
 * `oob: true` they carry `hx-swap-oob`). Templates are package assets (lib/assets.ts), so they are found from the
 * sources, from dist/, from a global npm install and inside a single executable alike.
 */
import { Eta } from 'eta';
import { relative, sep } from 'node:path';
import { readAsset, readAssetText } from '../../lib/assets.js';

/** Eta resolves template names to paths under this root (it checks they stay inside); readFile maps them to assets. */
const VIEWS_ROOT = '/vaultmesh-assets/views';

export type PartialName =
  | 'mission-bar'
  | 'node-row'
  | 'node-list'
  | 'pending'
  | 'proposals'
  | 'node-detail'
  | 'attention'
  | 'findings'
  | 'feed'
  | 'feed-item'
  | 'command-result'
  | 'key-result'
  | 'timeline-item'
  | 'history-page';

export interface ConsoleRenderer {
  page(data: object): string;
  login(data: object): string;
  /** A small standalone page (a form result for browsers without script). */
  notice(data: object): string;
  partial(name: PartialName, data: object): string;
  /** A static file under views/assets/ (console.css, console.js), from the same place as the templates. */
  asset(name: string): Buffer;
}

export function createConsoleRenderer(opts: { cache?: boolean } = {}): ConsoleRenderer {
  const eta = new Eta({ views: VIEWS_ROOT, cache: opts.cache ?? true, autoEscape: true });
  eta.readFile = (path: string) => readAssetText(`views/${relative(VIEWS_ROOT, path).split(sep).join('/')}`);
  return {
    asset: (name) => readAsset(`views/assets/${name}`),
    page: (data) => eta.render('./console', data),
    login: (data) => eta.render('./login', data),
    notice: (data) => eta.render('./notice', data),
    partial: (name, data) => eta.render(`./partials/${name}`, data),
  };
}
