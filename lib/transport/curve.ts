import { createPrivateKey, createPublicKey, scrypt, scryptSync, type ScryptOptions } from 'node:crypto';
import { InvalidArgumentError } from '../common/errors.js';

/** A CurveZMQ key pair, each key Z85-encoded (40 characters) as zeromq.js takes them. */
export interface CurveKeys {
  publicKey: string;
  secretKey: string;
}

const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
// DER prefix of a PKCS#8 X25519 private key; the raw 32 bytes follow it.
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
// Versioned, so a future scheme derives different keys rather than silently the same (v1 was
// one unsalted SHA-256: a 200-word list found a secret in under 2 s).
const DERIVATION_TAG = 'zerocos/curve/v2\0';

/** The cluster name keys are salted with when none is given. */
export const DEFAULT_CLUSTER = 'zerocos';

/**
 * scrypt with N = 2^14, r = 8, p = 1: 16 MiB of memory per guess, the cost the discovery beacon
 * key uses too. Measured with node:crypto on this project's 2-core test machine with both cores
 * busy (load average 14-24): 240-480 ms a derivation (N = 2^15 took 450-730 ms, too much for
 * every daemon, worker and client to pay at start). A guesser pays it for every word it tries
 * (the v1 SHA-256 cost well under 1 µs), and the memory makes GPU or ASIC guessing expensive.
 * A process derives its keys once (see the cache).
 */
const SCRYPT: ScryptOptions = { N: 2 ** 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

/**
 * Derived key pairs by cluster and secret, the newest MAX_CACHED: tests and clients start many
 * nodes in one process. Module state, but a memo of a pure function: no node sees another's.
 */
const derived = new Map<string, CurveKeys>();
const MAX_CACHED = 16;

/**
 * Derives the cluster's CurveZMQ key pair from a shared secret, with scrypt salted with the
 * protocol tag and the cluster name (so one dictionary of precomputed keys does not serve every
 * cluster). Blocks for the derivation (a fraction of a second) the first time a process asks for a pair;
 * {@link deriveCurveKeysAsync} does not.
 *
 * Every node holding the secret gets the same pair: its ROUTER is a CURVE server with it and
 * its DEALERs are clients that name it as the server key. CurveZMQ never sends a server's
 * permanent public key, so a peer without the secret cannot build a valid handshake: it can
 * neither join nor inject a message, and all traffic is encrypted. (Anyone with the secret is
 * fully trusted; there is no per-node identity in this scheme.)
 * @throws InvalidArgumentError on an empty secret
 */
export function deriveCurveKeys(secret: string, cluster: string = DEFAULT_CLUSTER): CurveKeys {
  const key = cacheKey(secret, cluster);
  const cached = derived.get(key);
  if (cached) return cached;
  return remember(key, scryptSync(secret.normalize('NFC'), salt(cluster), 32, SCRYPT));
}

/** {@link deriveCurveKeys} off the event loop (scrypt runs on libuv's thread pool). */
export async function deriveCurveKeysAsync(secret: string, cluster: string = DEFAULT_CLUSTER): Promise<CurveKeys> {
  const key = cacheKey(secret, cluster);
  const cached = derived.get(key);
  if (cached) return cached;
  const seed = await new Promise<Buffer>((resolve, reject) =>
    scrypt(secret.normalize('NFC'), salt(cluster), 32, SCRYPT, (error, bytes) => (error ? reject(error) : resolve(bytes))),
  );
  return remember(key, seed);
}

function cacheKey(secret: string, cluster: string): string {
  if (typeof secret !== 'string' || secret.length === 0) throw new InvalidArgumentError('a secret must be a non-empty string');
  if (typeof cluster !== 'string') throw new InvalidArgumentError('a cluster name must be a string');
  return JSON.stringify([cluster, secret]);
}

function salt(cluster: string): Buffer {
  return Buffer.from(`${DERIVATION_TAG}${cluster}`, 'utf8');
}

function remember(key: string, seed: Buffer): CurveKeys {
  const privateKey = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const publicDer = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  // X25519 clamps the scalar itself, so the seed is a valid secret key as it is.
  const keys = { publicKey: z85Encode(publicDer.subarray(publicDer.length - 32)), secretKey: z85Encode(seed) };
  if (derived.size >= MAX_CACHED) derived.delete(derived.keys().next().value!);
  derived.set(key, keys);
  return keys;
}

/** Z85 (ZeroMQ RFC 32) encoding; the input length must be a multiple of 4. */
export function z85Encode(bytes: Uint8Array): string {
  if (bytes.length % 4 !== 0) throw new InvalidArgumentError('Z85 encodes whole groups of 4 bytes');
  let out = '';
  for (let i = 0; i < bytes.length; i += 4) {
    let value = ((bytes[i]! << 24) >>> 0) + (bytes[i + 1]! << 16) + (bytes[i + 2]! << 8) + bytes[i + 3]!;
    const chunk: string[] = [];
    for (let j = 0; j < 5; j++) {
      chunk.unshift(Z85[value % 85]!);
      value = Math.floor(value / 85);
    }
    out += chunk.join('');
  }
  return out;
}
