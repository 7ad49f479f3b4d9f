import { describe, expect, it } from 'vitest';
import { VaultMeshError } from '../protocol/errors.js';
import { renderCliError } from './output.js';

describe('renderCliError', () => {
  it.each([
    [new VaultMeshError('FORBIDDEN', '403: this action needs the admin scope'), 'vaultmesh: 403: this action needs the admin scope\n  code: FORBIDDEN\n', 1],
    [new VaultMeshError('USAGE', 'bad --limit "x"', { details: [{ path: 'limit', message: 'h', hint: 'use a positive integer' }] }), 'vaultmesh: bad --limit "x"\n  hint: use a positive integer\n', 2],
    [new VaultMeshError('NO_TOKEN', 'no operator token'), 'vaultmesh: no operator token\n  code: NO_TOKEN\n', 2],
    [VaultMeshError.fromAnswer(502, undefined, 'HTTP 502'), 'vaultmesh: HTTP 502\n  code: HTTP_ERROR\n', 1],
    [Object.assign(new Error('permission denied'), { code: 'EACCES' }), 'vaultmesh: EACCES: permission denied\n', 1],
  ] as const)('%s', (err, text, exitCode) => {
    expect(renderCliError('vaultmesh', err)).toEqual({ text, exitCode });
  });
});
