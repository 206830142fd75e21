import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { InvalidArgumentError, ZerocosError } from '../common/errors.js';

/**
 * The cluster credential: the shared secret every daemon, worker and client of a cluster holds,
 * from which their CurveZMQ keys are derived. Without it a peer can neither connect nor run code.
 *
 * As Erlang does with `~/.erlang.cookie`, a daemon or client given no secret uses a per-user
 * secret file, creating it (32 random bytes, mode 0600, in a 0700 folder) on first start. So a
 * user's local cluster is authenticated and encrypted with no flag, and other users of the host
 * cannot join it. A cluster over several hosts shares the file (copy it, or point
 * `--secret-file` at the same secret on each host).
 */

/** The per-user secret file used when no secret is given: `~/.zerocos/secret`. */
export function defaultSecretPath(home = homedir()): string {
  return join(home, '.zerocos', 'secret');
}

/** A secret file is missing, empty, or readable by other users. */
export class CredentialError extends ZerocosError {
  override readonly code = 'ECREDENTIAL';
}

/**
 * Reads a secret from a file: its first line, trimmed.
 * @throws CredentialError when the file cannot be read, is empty, or others may read it (mode & 077)
 */
export function readSecretFile(path: string): string {
  let text: string;
  let mode: number;
  try {
    mode = statSync(path).mode;
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new CredentialError(`cannot read the secret file ${path}: ${(error as Error).message}`, { cause: error });
  }
  // As ssh and Erlang do: a secret others can read is no secret.
  if ((mode & 0o077) !== 0) throw new CredentialError(`the secret file ${path} can be read by other users: chmod 600 ${path}`);
  const secret = text.split('\n')[0]!.trim();
  if (secret.length === 0) throw new CredentialError(`the secret file ${path} is empty`);
  return secret;
}

/**
 * The secret in `path`, creating the file first when there is none (see the module comment).
 * Several processes starting at once agree on one secret: the file appears whole, by a hard
 * link of a completed temporary file, and whoever loses the race reads the winner's.
 * @throws CredentialError as {@link readSecretFile}, or when the file cannot be created
 */
export function loadOrCreateSecret(path = defaultSecretPath()): string {
  try {
    return readSecretFile(path);
  } catch (error) {
    if ((error as { cause?: { code?: string } }).cause?.code !== 'ENOENT') throw error;
  }
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(temporary, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(temporary, 0o600); // whatever the umask
    try {
      linkSync(temporary, path);
    } catch (error) {
      if ((error as { code?: string }).code !== 'EEXIST') throw error;
    }
  } catch (error) {
    throw new CredentialError(`cannot create the secret file ${path}: ${(error as Error).message}`, { cause: error });
  } finally {
    try {
      unlinkSync(temporary);
    } catch {
      // never written
    }
  }
  return readSecretFile(path);
}

/** How a daemon or client gets its secret (the first that is given wins). */
export interface CredentialOptions {
  /** The secret itself. */
  secret?: string;
  /** A file holding it (first line). */
  secretFile?: string;
  /** Run with no credential: plain ZeroMQ, anyone who reaches the port may run code. @default false */
  insecure?: boolean;
}

/**
 * The secret to use: the one given, the one in `secretFile`, none with `insecure`, else the
 * per-user default file (created when missing).
 * @throws InvalidArgumentError when `insecure` is combined with a secret; CredentialError from the files
 */
export function resolveSecret(options: CredentialOptions, defaultPath = defaultSecretPath()): string | undefined {
  if (options.insecure && (options.secret !== undefined || options.secretFile !== undefined)) {
    throw new InvalidArgumentError('insecure and a secret exclude each other');
  }
  if (options.secret !== undefined) {
    if (options.secret.length === 0) throw new InvalidArgumentError('the secret is empty');
    return options.secret;
  }
  if (options.secretFile !== undefined) return readSecretFile(options.secretFile);
  if (options.insecure) return undefined;
  return loadOrCreateSecret(defaultPath);
}
