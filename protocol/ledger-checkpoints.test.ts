import { describe, expect, it } from 'vitest';
import { keyPairFromSeed } from './keys.js';
import { assertLedgerOrigin, defaultLedgerOrigin, ledgerVerifierKey, makeCheckpointNote } from './ledger-checkpoints.js';

describe('the ledgers\' checkpoints', () => {
  it('match the worked example of docs/LEDGER.md byte for byte', () => {
    const key = keyPairFromSeed(Buffer.alloc(32, 1));
    const note = makeCheckpointNote('cc.example.com/vaultmesh', 'scans', { tree_size: 3, root_hash: '2cfef7627597e00b564975774ad728ef210706759fca6d64138c6dfc1cbf2cda' }, key);
    expect(note).toBe(
      'cc.example.com/vaultmesh/scans\n3\nLP73YnWX4AtWSXV3Stco7yEHBnWfym1kE4xt/By/LNo=\n\n' +
        '— cc.example.com/vaultmesh/scans f0LkDB55eiU4wEnpuO3KZ5a/D0l2cIqwR5cY5nyFqTTU9aHkF5IHsaOTvi5N0LyMb7x1Io98GHEJGXnp21agHgc/Awk=\n',
    );
    expect(ledgerVerifierKey('cc.example.com/vaultmesh', 'scans', key.publicKey)).toBe('cc.example.com/vaultmesh/scans+7f42e40c+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c');
  });

  it('derive a default origin from the hostname and refuse origins that are not schema-less names', () => {
    expect(defaultLedgerOrigin('CC-01.Example.com')).toBe('cc-01.example.com/vaultmesh');
    expect(defaultLedgerOrigin('')).toBe('localhost/vaultmesh');
    for (const bad of ['https://cc.example.com', 'cc.example.com/', 'a b', 'a+b', '']) expect(() => assertLedgerOrigin(bad), bad).toThrow(/invalid ledger origin/);
    expect(() => assertLedgerOrigin('cc.example.com/vaultmesh')).not.toThrow();
  });
});
