import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { InvalidArgumentError } from '../common/errors.js';

/** A CurveZMQ key pair, each key Z85-encoded (40 characters) as zeromq.js takes them. */
export interface CurveKeys {
  publicKey: string;
  secretKey: string;
}

const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
// DER prefix of a PKCS#8 X25519 private key; the raw 32 bytes follow it.
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
// Versioned, so a future scheme derives different keys rather than silently the same.
const DERIVATION_TAG = 'zerocos/curve/v1\0';

/**
 * Derives the cluster's CurveZMQ key pair from a shared secret.
 *
 * Every node holding the secret gets the same pair: its ROUTER is a CURVE server with it and
 * its DEALERs are clients that name it as the server key. CurveZMQ never sends a server's
 * permanent public key, so a peer without the secret cannot build a valid handshake: it can
 * neither join nor inject a message, and all traffic is encrypted. (Anyone with the secret is
 * fully trusted; there is no per-node identity in this scheme.)
 * @throws InvalidArgumentError on an empty secret
 */
export function deriveCurveKeys(secret: string): CurveKeys {
  if (typeof secret !== 'string' || secret.length === 0) throw new InvalidArgumentError('a secret must be a non-empty string');
  const seed = createHash('sha256').update(DERIVATION_TAG).update(secret, 'utf8').digest();
  const privateKey = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const publicDer = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  // X25519 clamps the scalar itself, so the seed is a valid secret key as it is.
  return { publicKey: z85Encode(publicDer.subarray(publicDer.length - 32)), secretKey: z85Encode(seed) };
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
