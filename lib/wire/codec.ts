import { Packr, Unpackr } from 'msgpackr';
import { EncodeError, MessageTooLargeError, ProtocolError } from '../common/errors.js';
import type { DecodedBatch, Envelope } from './envelope.js';
import { BLOB_FLAG, PAYLOAD_INDEX } from './kinds.js';
import { FRAME_TYPE_BATCH, HEADER_BYTES, MAGIC_0, MAGIC_1, PROTOCOL_VERSION } from './limits.js';
import { validateEnvelope } from './validate.js';

/** One envelope encoded at send time, waiting in an outbound queue to be batched. */
export interface EncodedEnvelope {
  bytes: Uint8Array;
  /** A binary payload that travels as its own frame (zero-copy). */
  blob?: Uint8Array;
}

/** Node ids and batch overhead that may surround a maximal envelope in one body frame. */
export const BODY_OVERHEAD_BYTES = 4096;

const HEADER = Buffer.from([MAGIC_0, MAGIC_1, PROTOCOL_VERSION, FRAME_TYPE_BATCH]);

/**
 * Encodes envelopes one at a time, at `send` time, so that a message too large or impossible
 * to encode fails in the sender's own call with a typed error, and so that a later mutation
 * of the sent object cannot change what is delivered.
 */
export class EnvelopeEncoder {
  // Plain msgpack (no records, no msgpackr-only extensions) so other languages can decode it.
  private readonly packr = new Packr({ useRecords: false, moreTypes: false, encodeUndefinedAsNil: true });

  constructor(private readonly maxMessageBytes: number) {}

  /**
   * Encodes one envelope. When `blob` is given, the envelope's payload slot must already be
   * `null` and its kind carry {@link BLOB_FLAG}: the binary travels as its own frame.
   * @throws MessageTooLargeError, EncodeError
   */
  encode(envelope: Envelope, blob?: Uint8Array): EncodedEnvelope {
    let bytes: Uint8Array;
    try {
      bytes = this.packr.pack(envelope);
    } catch (error) {
      throw new EncodeError(`message cannot be encoded: ${(error as Error).message}`, { cause: error });
    }
    if (bytes.length > this.maxMessageBytes) throw new MessageTooLargeError(bytes.length, this.maxMessageBytes);
    if (blob) {
      if (blob.byteLength > this.maxMessageBytes) throw new MessageTooLargeError(blob.byteLength, this.maxMessageBytes);
      return { bytes, blob };
    }
    return { bytes };
  }

  /** The msgpack bytes of `[fromNode, toNode]` that open every batch body on one channel. */
  encodeBatchPrefix(fromNode: string, toNode: string): Uint8Array {
    return Buffer.concat([this.packr.pack(fromNode), this.packr.pack(toNode)]);
  }
}

/**
 * Builds the ZeroMQ multipart message for one batch: `[header, body, ...blobs]` where body is the
 * msgpack array `[fromNode, toNode, ...envelopes]`. Envelopes were encoded individually, so
 * the body is their concatenation behind an array header.
 */
export function encodeBatch(prefix: Uint8Array, items: readonly EncodedEnvelope[], count = items.length): Buffer[] {
  const n = count + 2;
  const headerLength = n < 16 ? 1 : n < 0x10000 ? 3 : 5;
  let size = headerLength + prefix.length;
  for (let i = 0; i < count; i++) size += items[i]!.bytes.length;
  const body = Buffer.allocUnsafe(size);
  let offset = 0;
  if (n < 16) body[offset++] = 0x90 | n;
  else if (n < 0x10000) {
    body[offset++] = 0xdc;
    body.writeUInt16BE(n, offset);
    offset += 2;
  } else {
    body[offset++] = 0xdd;
    body.writeUInt32BE(n, offset);
    offset += 4;
  }
  body.set(prefix, offset);
  offset += prefix.length;
  const frames: Buffer[] = [HEADER, body];
  for (let i = 0; i < count; i++) {
    const item = items[i]!;
    body.set(item.bytes, offset);
    offset += item.bytes.length;
    if (item.blob) frames.push(toBuffer(item.blob));
  }
  return frames;
}

function toBuffer(view: Uint8Array): Buffer {
  return Buffer.isBuffer(view) ? view : Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

/**
 * Decodes and validates the frames of one batch (the ROUTER's routing-id frame already removed).
 * Never trusts the input: any defect raises a {@link ProtocolError} whose `reason` names it.
 */
export class BatchDecoder {
  private readonly unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, moreTypes: false, int64AsType: 'number' });

  constructor(private readonly maxMessageBytes: number) {}

  decode(frames: readonly Uint8Array[]): DecodedBatch {
    if (frames.length < 2) throw new ProtocolError('truncated', `expected at least 2 frames, got ${frames.length}`);
    const header = frames[0]!;
    if (header.length !== HEADER_BYTES || header[0] !== MAGIC_0 || header[1] !== MAGIC_1) {
      throw new ProtocolError('magic', 'header frame does not start with the zerocos magic bytes');
    }
    if (header[2] !== PROTOCOL_VERSION) {
      throw new ProtocolError('version', `protocol version ${header[2]} is not supported (this node speaks ${PROTOCOL_VERSION})`);
    }
    if (header[3] !== FRAME_TYPE_BATCH) throw new ProtocolError('frame-type', `unknown frame type ${header[3]}`);
    const body = frames[1]!;
    if (body.length > this.maxMessageBytes + BODY_OVERHEAD_BYTES) {
      throw new ProtocolError('oversize', `body frame of ${body.length} bytes exceeds the limit`);
    }
    for (let i = 2; i < frames.length; i++) {
      if (frames[i]!.length > this.maxMessageBytes) throw new ProtocolError('oversize', `blob frame of ${frames[i]!.length} bytes exceeds the limit`);
    }

    let decoded: unknown;
    try {
      decoded = this.unpackr.unpack(body);
    } catch (error) {
      throw new ProtocolError('decode', `body is not valid msgpack: ${(error as Error).message}`, { cause: error });
    }
    if (!Array.isArray(decoded) || decoded.length < 2) throw new ProtocolError('shape', 'body is not an array [fromNode, toNode, ...envelopes]');
    const fromNode = decoded[0];
    const toNode = decoded[1];
    if (typeof fromNode !== 'string' || typeof toNode !== 'string') throw new ProtocolError('shape', 'batch node ids must be strings');

    const envelopes = new Array<Envelope>(decoded.length - 2);
    let nextBlob = 2;
    for (let i = 2; i < decoded.length; i++) {
      const envelope = decoded[i];
      const problem = validateEnvelope(envelope);
      if (problem !== undefined) throw new ProtocolError('shape', `envelope ${i - 2}: ${problem}`);
      const kindByte = (envelope as number[])[0]!;
      if (kindByte & BLOB_FLAG) {
        if (nextBlob >= frames.length) throw new ProtocolError('truncated', `envelope ${i - 2} refers to a missing blob frame`);
        const kind = (kindByte & ~BLOB_FLAG) as keyof typeof PAYLOAD_INDEX;
        (envelope as unknown[])[0] = kind;
        (envelope as unknown[])[PAYLOAD_INDEX[kind]!] = frames[nextBlob++];
      }
      envelopes[i - 2] = envelope as Envelope;
    }
    if (nextBlob !== frames.length) throw new ProtocolError('shape', `${frames.length - nextBlob} blob frame(s) not referred to by any envelope`);
    return { fromNode, toNode, envelopes };
  }
}
