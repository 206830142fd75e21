import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CredentialError, InvalidArgumentError, defaultSecretPath, loadOrCreateSecret, readSecretFile, resolveSecret } from '../../lib/internal.js';

let home: string;
beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'zerocos-credential-'));
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

describe('the cluster credential', () => {
  it('creates the per-user secret once, mode 600 in a 700 folder, and reads the same one back', () => {
    const path = defaultSecretPath(home);
    const first = loadOrCreateSecret(path);
    expect(first.length).toBeGreaterThanOrEqual(40);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(home, '.zerocos')).mode & 0o777).toBe(0o700);
    expect(loadOrCreateSecret(path)).toBe(first);
    expect(readFileSync(path, 'utf8').trim()).toBe(first);
  });

  it('refuses a secret file other users can read, and an empty one', () => {
    const path = join(home, 'secret');
    writeFileSync(path, 'hunter2\n', { mode: 0o644 });
    chmodSync(path, 0o644);
    expect(() => readSecretFile(path)).toThrow(/chmod 600/);
    writeFileSync(path, '\n');
    chmodSync(path, 0o600);
    expect(() => readSecretFile(path)).toThrow(CredentialError);
  });

  it('takes the secret given, then the file given, then none with insecure, else the default file', () => {
    const file = join(home, 'given');
    writeFileSync(file, 'from the file\nsecond line\n', { mode: 0o600 });
    const fallback = defaultSecretPath(home);
    expect(resolveSecret({ secret: 'given' }, fallback)).toBe('given');
    expect(resolveSecret({ secretFile: file }, fallback)).toBe('from the file');
    expect(resolveSecret({ insecure: true }, fallback)).toBeUndefined();
    expect(resolveSecret({}, fallback)).toBe(loadOrCreateSecret(fallback));
    expect(() => resolveSecret({ insecure: true, secret: 'x' }, fallback)).toThrow(InvalidArgumentError);
  });
});
