import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { signRotation, type SignedRotation } from '../../protocol/center-key-rotation.js';
import { generateKeyPair, privateKeyPem, type KeyPair } from '../../protocol/keys.js';
import { signPayload } from '../../protocol/signing.js';
import { loadOrCreateKeyFile, readKeyFile } from '../../lib/key-file.js';
import { readPreviousKeys } from '../center-key.js';
import { quietLogger, tempDir } from '../../test/helpers.js';
import { createCenterKeyRing, nextKeyPath } from './center-key-ring.js';

function announce(serial: number, from: KeyPair, to: KeyPair): SignedRotation {
  const now = new Date();
  return signRotation(
    { serial, old_public_key: from.publicKeyHex, old_key_id: from.keyId, new_public_key: to.publicKeyHex, new_key_id: to.keyId, effective_at: now.toISOString(), overlap_until: new Date(now.getTime() + 3_600_000).toISOString() },
    from,
    to,
  );
}

function setup() {
  const t = tempDir();
  const { key } = loadOrCreateKeyFile(join(t.dir, 'cc-key.pem'));
  const errors: string[] = [];
  const log = { ...quietLogger, error: (m: string) => errors.push(m) };
  return { t, key, errors, ring: () => createCenterKeyRing({ stateDir: t.dir, initial: readKeyFile(join(t.dir, 'cc-key.pem')), log }) };
}

describe('center key ring', () => {
  it('prepares the next key 0600, and settling on its statement swaps the files and the signing key', () => {
    const { t, key, ring: open } = setup();
    try {
      const ring = open();
      const next = ring.prepare().key;
      expect(statSync(nextKeyPath(t.dir)).mode & 0o777).toBe(0o600);
      expect(ring.prepare()).toMatchObject({ created: false });
      // Before the statement the current key still signs.
      expect(ring.key.keyId).toBe(key.keyId);
      expect(ring.settle([])).toEqual({ state: 'ok', key_id: key.keyId });
      const held = ring.key; // what the command service and the ledgers hold from start-up
      expect(ring.settle([announce(1, key, next)])).toEqual({ state: 'ok', key_id: next.keyId });
      expect(held.keyId).toBe(next.keyId);
      expect(signPayload({ a: 1 }, held)).toBe(signPayload({ a: 1 }, next));
      expect(readKeyFile(join(t.dir, 'cc-key.pem')).publicKeyHex).toBe(next.publicKeyHex);
      expect(readFileSync(join(t.dir, 'cc-key.pem.pub'), 'utf8').trim()).toBe(next.publicKeyHex);
      expect(existsSync(nextKeyPath(t.dir))).toBe(false);
      expect(existsSync(`${nextKeyPath(t.dir)}.pub`)).toBe(false);
      // The old private key is gone from the state dir; its public key stays for verification.
      expect(readPreviousKeys(t.dir)).toEqual([key.publicKeyHex]);
      expect(readFileSync(join(t.dir, 'cc-key.pem'), 'utf8')).not.toBe(privateKeyPem(key.seed));
    } finally {
      t.cleanup();
    }
  });

  it('a start after a crash between the journal line and the swap completes the swap; settling twice changes nothing', () => {
    const { t, key, ring: open } = setup();
    try {
      const next = open().prepare().key;
      const statement = announce(1, key, next);
      // "Crash": the statement is journaled, the files are as before the swap. A new process opens the old key.
      const ring = open();
      expect(ring.key.keyId).toBe(key.keyId);
      expect(ring.settle([statement])).toEqual({ state: 'ok', key_id: next.keyId });
      expect(open().settle([statement])).toEqual({ state: 'ok', key_id: next.keyId });
      expect(readPreviousKeys(t.dir)).toEqual([key.publicKeyHex]);
      // A crash between the rename and the .pub rewrite: the .pub is put right.
      writeFileSync(join(t.dir, 'cc-key.pem.pub'), `${key.publicKeyHex}\n`);
      open().settle([statement]);
      expect(readFileSync(join(t.dir, 'cc-key.pem.pub'), 'utf8').trim()).toBe(next.publicKeyHex);
    } finally {
      t.cleanup();
    }
  });

  it('a file swap that fails after the statement still signs with the announced key, and keeps the next key file for the next start', () => {
    const { t, key, errors, ring: open } = setup();
    try {
      const ring = open();
      const next = ring.prepare().key;
      // Something the rename cannot replace: a non-empty directory where cc-key.pem was.
      rmSync(join(t.dir, 'cc-key.pem'));
      mkdirSync(join(t.dir, 'cc-key.pem', 'x'), { recursive: true });
      expect(ring.settle([announce(1, key, next)])).toEqual({ state: 'ok', key_id: next.keyId });
      expect(signPayload({ a: 1 }, ring.key)).toBe(signPayload({ a: 1 }, next));
      expect(errors.join('\n')).toMatch(/key file swap failed/);
      expect(existsSync(nextKeyPath(t.dir))).toBe(true);
    } finally {
      t.cleanup();
    }
  });

  it('a key no rotation names (a lost key replaced with --new-center-key) signs, with a warning, and can rotate again', () => {
    const { t, key } = setup();
    try {
      const warnings: string[] = [];
      const announced = generateKeyPair();
      const history = [announce(1, key, announced)];
      const replacement = generateKeyPair();
      writeFileSync(join(t.dir, 'cc-key.pem'), privateKeyPem(replacement.seed), { mode: 0o600 });
      const ring = createCenterKeyRing({ stateDir: t.dir, initial: readKeyFile(join(t.dir, 'cc-key.pem')), log: { ...quietLogger, warn: (m: string) => warnings.push(m) } });
      expect(ring.settle(history)).toEqual({ state: 'ok', key_id: replacement.keyId });
      expect(signPayload({ a: 1 }, ring.key)).toBe(signPayload({ a: 1 }, replacement));
      expect(warnings.join('\n')).toMatch(new RegExp(`announces ${announced.keyId}.*signs with ${replacement.keyId}, which no rotation names`));
      // Its own rotation then continues the chain from it.
      const next = ring.prepare().key;
      expect(ring.settle([...history, announce(2, replacement, next)])).toEqual({ state: 'ok', key_id: next.keyId });
    } finally {
      t.cleanup();
    }
  });

  it('a crash before the journal line leaves a prepared key, which the next rotation uses', () => {
    const { t, key, ring: open } = setup();
    try {
      const next = open().prepare().key;
      const ring = open();
      expect(ring.settle([])).toEqual({ state: 'ok', key_id: key.keyId });
      expect(ring.prepared()?.keyId).toBe(next.keyId);
      expect(ring.prepare()).toMatchObject({ created: false, key: { keyId: next.keyId } });
    } finally {
      t.cleanup();
    }
  });

  it('a center that lacks the announced key refuses to sign with CENTER_KEY_NOT_HELD (503) and says so loudly', () => {
    const { t, key, errors, ring: open } = setup();
    try {
      const ring = open();
      const elsewhere = generateKeyPair(); // prepared on another replica, never copied here
      expect(ring.settle([announce(1, key, elsewhere)])).toMatchObject({ state: 'lacking', key_id: elsewhere.keyId, serial: 1 });
      expect(() => signPayload({ a: 1 }, ring.key)).toThrow(expect.objectContaining({ code: 'CENTER_KEY_NOT_HELD', status: 503 }));
      expect(ring.key.keyId).toBe(elsewhere.keyId); // answers name the announced key
      expect(errors.join('\n')).toMatch(new RegExp(`CENTER_KEY_NOT_HELD.*${elsewhere.keyId}.*cc-key\\.next\\.pem`));
      // The operator copies the key in: the next settle takes it.
      writeFileSync(nextKeyPath(t.dir), privateKeyPem(elsewhere.seed), { mode: 0o600 });
      expect(ring.settle([announce(1, key, elsewhere)])).toEqual({ state: 'ok', key_id: elsewhere.keyId });
      expect(signPayload({ a: 1 }, ring.key)).toBe(signPayload({ a: 1 }, elsewhere));
    } finally {
      t.cleanup();
    }
  });
});
