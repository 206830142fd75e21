import { randomBytes } from 'node:crypto';

/**
 * A fresh incarnation tag: 12 hex digits of randomness, so a restarted node never reuses
 * the identity of the one it replaces (pids of the old incarnation stay dead).
 */
export function newIncarnation(): string {
  return randomBytes(6).toString('hex');
}
