import { isErrorInfo } from '../common/errors.js';
import { BLOB_FLAG, Kind, MAX_KIND, PAYLOAD_INDEX } from './kinds.js';

/**
 * Checks one decoded envelope against the catalogue in kinds.ts. Returns a short description of
 * the first problem, or undefined when the envelope is well formed. Pure and allocation-free on
 * the happy path: it runs once per received message.
 */
export function validateEnvelope(value: unknown): string | undefined {
  if (!Array.isArray(value)) return 'not an array';
  const kindByte = value[0];
  if (typeof kindByte !== 'number' || !Number.isInteger(kindByte)) return 'kind is not an integer';
  const kind = kindByte & ~BLOB_FLAG;
  if (kind < 1 || kind > MAX_KIND || kindByte > (MAX_KIND | BLOB_FLAG)) return `unknown kind ${kindByte}`;
  if (kindByte & BLOB_FLAG) {
    const at = (PAYLOAD_INDEX as Partial<Record<Kind, number>>)[kind as Kind];
    if (at === undefined) return `kind ${kind} cannot carry a blob`;
    if (value[at] !== null) return 'blob envelope must hold nil in its payload slot';
  }
  switch (kind) {
    case Kind.Send:
      return arity(value, 4) ?? target(value[1]) ?? uint(value[2], 'from');
    case Kind.Call:
      return arity(value, 5) ?? target(value[1]) ?? uint(value[2], 'from') ?? uint(value[3], 'ref');
    case Kind.Reply:
      return arity(value, 5) ?? uint(value[1], 'to') ?? uint(value[2], 'ref') ?? replyStatus(value[3], value[4]);
    case Kind.Link:
    case Kind.Unlink:
      return arity(value, 3) ?? uint(value[1], 'to') ?? uint(value[2], 'from');
    case Kind.Exit:
      return arity(value, 5) ?? target(value[1]) ?? uint(value[2], 'from') ?? (value[4] === 0 || value[4] === 1 ? undefined : 'exit linked flag must be 0 or 1');
    case Kind.Monitor:
    case Kind.Demonitor:
      return arity(value, 4) ?? target(value[1]) ?? uint(value[2], 'from') ?? uint(value[3], 'ref');
    case Kind.Down:
      return arity(value, 5) ?? uint(value[1], 'to') ?? target(value[2]) ?? uint(value[3], 'ref');
    case Kind.DeadLetter:
      return arity(value, 5) ?? uint(value[1], 'to') ?? target(value[2]) ?? (typeof value[3] === 'string' ? undefined : 'dead-letter reason must be a string');
    default:
      return `unknown kind ${kind}`;
  }
}

function arity(value: unknown[], expected: number): string | undefined {
  return value.length === expected ? undefined : `expected ${expected} fields, got ${value.length}`;
}

function uint(value: unknown, field: string): string | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? undefined : `${field} must be a non-negative integer`;
}

function replyStatus(status: unknown, payload: unknown): string | undefined {
  if (status === 0) return undefined;
  if (status === 1) return isErrorInfo(payload) ? undefined : 'error reply must carry {name, message}';
  return 'reply status must be 0 or 1';
}

function target(value: unknown): string | undefined {
  if (typeof value === 'string') return value.length > 0 && value.length <= 255 ? undefined : 'name must be 1-255 characters';
  return uint(value, 'to');
}
