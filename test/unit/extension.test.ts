import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../lib/common/errors.js';
import { LocatedValue, ObjectRef } from '../../lib/task/object-ref.js';
import { BatchDecoder, BatchEncoder } from '../../lib/wire/codec.js';
import { Kind } from '../../lib/wire/kinds.js';
import { FRAME_TYPE_BATCH, MAGIC_0, MAGIC_1, PROTOCOL_VERSION } from '../../lib/wire/header.js';

const FROM = 'a:000000000001@tcp://127.0.0.1:1';
const TO = 'b:000000000002@tcp://127.0.0.1:2';
const HEADER = Buffer.from([MAGIC_0, MAGIC_1, PROTOCOL_VERSION, FRAME_TYPE_BATCH]);
const plain = new Packr({ useRecords: false, moreTypes: false });

/** The body `[FROM, TO, [Send, 5, 0, <payload bytes>]]` with `payload` spliced in raw. */
function bodyWithRawPayload(payload: Buffer): Buffer {
  const prefix = plain.pack([FROM, TO]).subarray(1); // the two strings, without the array header
  return Buffer.concat([Buffer.from([0x93]), prefix, Buffer.from([0x94, Kind.Send, 5, 0]), payload]);
}

function decodeError(body: Buffer): ProtocolError {
  try {
    new BatchDecoder(1 << 20).decode([HEADER, body]);
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return error as ProtocolError;
  }
  throw new Error('the batch was accepted');
}

describe('msgpack extension types 20-23', () => {
  it('writes an ObjectRef as one standard ext value whose data is the msgpack array [id, owner]', () => {
    const inner = plain.pack([7, FROM]);
    const bytes = plain.pack(new ObjectRef(7, FROM));
    // ext 8: c7 <length> <type> <data>, the data exactly the plain encoding of the array.
    expect([...bytes.subarray(0, 3)]).toEqual([0xc7, inner.length, 20]);
    expect(Buffer.compare(bytes.subarray(3), inner)).toBe(0);
    expect(bytes).toHaveLength(3 + inner.length);
  });

  it('round-trips refs and located values through the kernel codec', () => {
    const { messages } = new BatchEncoder(1 << 20).encode(FROM, TO, [[Kind.Send, 5, 0, { ref: new ObjectRef(3, FROM), at: new LocatedValue(TO, 'k') }]]);
    const [envelope] = new BatchDecoder(1 << 20).decode(messages[0]!).envelopes;
    const payload = envelope![3] as { ref: ObjectRef; at: LocatedValue };
    expect(payload.ref).toBeInstanceOf(ObjectRef);
    expect(payload.ref).toMatchObject({ id: 3, owner: FROM });
    expect(payload.at).toMatchObject({ at: TO, key: 'k' });
  });

  it('accepts a ref written by hand as a foreign msgpack library would (ext 32 with a long owner)', () => {
    const inner = plain.pack([12, FROM]);
    const ext = Buffer.concat([Buffer.from([0xc7, inner.length, 20]), inner]);
    const { envelopes } = new BatchDecoder(1 << 20).decode([HEADER, bodyWithRawPayload(ext)]);
    expect(envelopes[0]![3]).toMatchObject({ id: 12, owner: FROM });
  });

  it("refuses the protocol version 1 form (d4 <type> 00, then the array) with reason 'version'", () => {
    const old = Buffer.concat([Buffer.from([0xd4, 20, 0x00]), plain.pack([7, FROM])]);
    const error = decodeError(bodyWithRawPayload(old));
    expect(error.reason).toBe('version');
    expect(error.message).toMatch(/extension 20 is in the protocol version 1 form/);
  });

  it("refuses ext data of the wrong shape with reason 'shape'", () => {
    const inner = plain.pack(['seven', FROM]);
    const error = decodeError(bodyWithRawPayload(Buffer.concat([Buffer.from([0xc7, inner.length, 20]), inner])));
    expect(error.reason).toBe('shape');
    expect(error.message).toMatch(/extension 20: data is not \[id: uint, owner: str\]/);
    const notArray = plain.pack(5);
    expect(decodeError(bodyWithRawPayload(Buffer.concat([Buffer.from([0xd4, 21]), notArray]))).reason).toBe('shape');
  });
});
