/**
 * What an operator identity may do. The admin token holds `admin`, which implies every other scope; API tokens,
 * Cloudflare Access service tokens and console sessions carry a subset (docs/API.md, "Scopes").
 */
import { z } from 'zod';
import { SCOPES } from './scope-names.js';

export { SCOPES };
export type Scope = (typeof SCOPES)[number];
export const scopeSchema = z.enum(SCOPES);

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}
