import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeCryptoBackend, publicKeyObject } from './ed25519.js';
import { createPublicKey, randomBytes, verify as nodeVerify } from 'node:crypto';
import { nobleBackend } from './ed25519-noble.js';
import { generateKeyPair, keyIdOf, keyPairFromSeed, privateKeyPem, seedFromPem } from './keys.js';
import { signPayload, verifyPayload } from './signing.js';
import { canonicalBytes } from './canonical-json.js';

/** The DER SPKI import `publicKeyObject` replaced: the reference the JWK import is held equal to. */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const publicKeyObjectFromSpki = (publicKey: Uint8Array) => createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });

const hex = (s: string) => Buffer.from(s, 'hex');

// RFC 8032 §7.1 TEST 1 (empty message) and TEST 2 (one byte).
const VECTORS = [
  {
    seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    pub: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    msg: '',
    sig: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    pub: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    msg: '72',
    sig: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
];

describe.each([nodeCryptoBackend, nobleBackend])('Ed25519 backend $name', (backend) => {
  it.each(VECTORS)('RFC 8032 vector (pub $pub)', (v) => {
    expect(Buffer.from(backend.publicKey(hex(v.seed))).toString('hex')).toBe(v.pub);
    expect(Buffer.from(backend.sign(hex(v.seed), hex(v.msg))).toString('hex')).toBe(v.sig);
    expect(backend.verify(hex(v.pub), hex(v.msg), hex(v.sig))).toBe(true);
  });

  it('rejects a flipped bit, a wrong key and malformed input without throwing', () => {
    const v = VECTORS[1]!;
    const sig = hex(v.sig);
    sig[5]! ^= 1;
    expect(backend.verify(hex(v.pub), hex(v.msg), sig)).toBe(false);
    expect(backend.verify(hex(VECTORS[0]!.pub), hex(v.msg), hex(v.sig))).toBe(false);
    expect(backend.verify(new Uint8Array(31), hex(v.msg), hex(v.sig))).toBe(false);
    expect(backend.verify(hex(v.pub), hex(v.msg), new Uint8Array(63))).toBe(false);
  });

  it('rejects a non-canonical S (S + L), as strict RFC 8032 requires', () => {
    const v = VECTORS[0]!;
    const sig = hex(v.sig);
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    let s = 0n;
    for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(sig[32 + i]!);
    let t = s + L;
    for (let i = 0; i < 32; i++) {
      sig[32 + i] = Number(t & 0xffn);
      t >>= 8n;
    }
    expect(backend.verify(hex(v.pub), hex(v.msg), sig)).toBe(false);
  });
});

describe('backends agree', () => {
  it('on 50 random keys and messages, both ways', () => {
    for (let i = 0; i < 50; i++) {
      const k = generateKeyPair();
      const msg = canonicalBytes({ i, r: Math.random() });
      expect(nobleBackend.publicKey(k.seed)).toEqual(k.publicKey);
      const s1 = nodeCryptoBackend.sign(k.seed, msg);
      const s2 = nobleBackend.sign(k.seed, msg);
      expect(Buffer.from(s1).equals(Buffer.from(s2))).toBe(true); // Ed25519 is deterministic
      expect(nobleBackend.verify(k.publicKey, msg, s1)).toBe(true);
      expect(nodeCryptoBackend.verify(k.publicKey, msg, s2)).toBe(true);
    }
  });
});

describe('public key import (JWK, not DER SPKI)', () => {
  // Small-order points, the identity, y = p (non-canonical), all ones, all zeros: keys no honest signer has.
  const odd = [
    '0000000000000000000000000000000000000000000000000000000000000000',
    '0100000000000000000000000000000000000000000000000000000000000000',
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
    '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  ].map(hex);
  const outcome = (make: (k: Uint8Array) => unknown, key: Uint8Array, msg: Uint8Array, sig: Uint8Array) => {
    let ko;
    try {
      ko = make(key);
    } catch {
      return 'import refused';
    }
    try {
      return nodeVerify(null, msg, ko as Parameters<typeof nodeVerify>[2], sig);
    } catch {
      return 'verify threw';
    }
  };
  it('gives the same key bytes and the same verdicts as the SPKI import, honest and odd keys alike', () => {
    const cases: Array<[Uint8Array, Uint8Array, Uint8Array]> = [];
    for (let i = 0; i < 40; i++) {
      const k = generateKeyPair();
      const msg = randomBytes(i * 7);
      const sig = nodeCryptoBackend.sign(k.seed, msg);
      cases.push([k.publicKey, msg, sig]);
      const bad = Uint8Array.from(sig);
      bad[i % 64]! ^= 1;
      cases.push([k.publicKey, msg, bad]);
    }
    for (const key of [...odd, ...Array.from({ length: 40 }, () => randomBytes(32))]) cases.push([key, randomBytes(9), randomBytes(64)]);
    for (const v of VECTORS) cases.push([hex(v.pub), hex(v.msg), hex(v.sig)]);
    let accepted = 0;
    for (const [key, msg, sig] of cases) {
      const jwk = outcome(publicKeyObject, key, msg, sig);
      expect(jwk).toBe(outcome(publicKeyObjectFromSpki, key, msg, sig));
      if (jwk === true) accepted++;
      if (typeof jwk !== 'string') {
        const spki = publicKeyObjectFromSpki(key).export({ format: 'der', type: 'spki' });
        expect(publicKeyObject(key).export({ format: 'der', type: 'spki' }).equals(spki)).toBe(true);
      }
    }
    expect(accepted).toBe(40 + VECTORS.length);
  });
});

describe('key files and ids', () => {
  it('key_id is the first 16 hex of SHA-256 of the raw public key', () => {
    expect(keyIdOf(VECTORS[0]!.pub)).toMatch(/^[0-9a-f]{16}$/);
    expect(keyIdOf(VECTORS[0]!.pub)).toBe(keyIdOf(hex(VECTORS[0]!.pub)));
  });
  it('PEM round trip', () => {
    const k = generateKeyPair();
    expect(Buffer.from(seedFromPem(privateKeyPem(k.seed))).equals(Buffer.from(k.seed))).toBe(true);
  });
});

describe('OpenSSL interop', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vm-openssl-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });

  it('a payload we sign verifies with openssl pkeyutl', () => {
    const k = generateKeyPair();
    const payload = { action: 'ping', id: 'c1', nonce: 'ab'.repeat(16) };
    writeFileSync(join(dir, 'msg.bin'), canonicalBytes(payload));
    writeFileSync(join(dir, 'sig.bin'), hex(signPayload(payload, k)));
    writeFileSync(join(dir, 'key.pem'), privateKeyPem(k.seed));
    openssl(['pkey', '-in', 'key.pem', '-pubout', '-out', 'pub.pem']);
    const out = openssl(['pkeyutl', '-verify', '-pubin', '-inkey', 'pub.pem', '-rawin', '-in', 'msg.bin', '-sigfile', 'sig.bin']).toString();
    expect(out).toMatch(/Signature Verified Successfully/);
    // …and a tampered signature does not
    const bad = hex(signPayload(payload, k));
    bad[0]! ^= 1;
    writeFileSync(join(dir, 'bad.bin'), bad);
    expect(() => openssl(['pkeyutl', '-verify', '-pubin', '-inkey', 'pub.pem', '-rawin', '-in', 'msg.bin', '-sigfile', 'bad.bin'])).toThrow();
  });

  it('a key and signature made by openssl verify here, with both backends', () => {
    openssl(['genpkey', '-algorithm', 'ed25519', '-out', 'ossl.pem']);
    const payload = { node_id: 'web-01', v: 1 };
    writeFileSync(join(dir, 'm2.bin'), canonicalBytes(payload));
    openssl(['pkeyutl', '-sign', '-inkey', 'ossl.pem', '-rawin', '-in', 'm2.bin', '-out', 's2.bin']);
    const k = keyPairFromSeed(seedFromPem(readFileSync(join(dir, 'ossl.pem'), 'utf8')));
    const sig = readFileSync(join(dir, 's2.bin')).toString('hex');
    expect(verifyPayload(payload, sig, k.publicKeyHex, nodeCryptoBackend)).toBe(true);
    expect(verifyPayload(payload, sig, k.publicKeyHex, nobleBackend)).toBe(true);
    expect(verifyPayload({ ...payload, v: 2 }, sig, k.publicKeyHex)).toBe(false);
  });
});
