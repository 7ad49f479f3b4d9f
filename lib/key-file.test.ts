import { chmodSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../test/helpers.js';
import { loadOrCreateKeyFile, readKeyFile } from './key-file.js';

describe('key files', () => {
  const cleanups: (() => void)[] = [];
  const dir = () => {
    const t = tempDir('vm-keyfile-');
    cleanups.push(t.cleanup);
    return t.dir;
  };
  afterEach(() => cleanups.splice(0).forEach((c) => c()));

  it('creates a 0600 PEM key and its .pub once, then loads the same key', () => {
    const file = join(dir(), 'nested', 'k.pem');
    const first = loadOrCreateKeyFile(file);
    expect(first.created).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(readFileSync(`${file}.pub`, 'utf8')).toBe(`${first.key.publicKeyHex}\n`);
    const again = loadOrCreateKeyFile(file);
    expect(again.created).toBe(false);
    expect(again.key.publicKeyHex).toBe(first.key.publicKeyHex);
  });

  it('refuses a key others can read, naming the chmod that fixes it', () => {
    const file = join(dir(), 'k.pem');
    loadOrCreateKeyFile(file);
    chmodSync(file, 0o640);
    expect(() => readKeyFile(file)).toThrow(expect.objectContaining({ code: 'INSECURE_KEY_FILE', message: expect.stringContaining(`chmod 600 ${file}`) }));
    expect(() => loadOrCreateKeyFile(file)).toThrow(expect.objectContaining({ code: 'INSECURE_KEY_FILE' }));
  });
});
