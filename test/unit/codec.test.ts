import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { EncodeError, MessageTooLargeError, ProtocolError } from '../../lib/common/errors.js';
import { BatchDecoder, BatchEncoder, BODY_OVERHEAD_BYTES } from '../../lib/wire/codec.js';
import type { Envelope } from '../../lib/wire/envelope.js';
import { BLOB_FLAG, Kind } from '../../lib/wire/kinds.js';
import { FRAME_TYPE_BATCH, MAGIC_0, MAGIC_1, PROTOCOL_VERSION } from '../../lib/wire/header.js';
import { prng } from '../support/prng.js';

const FROM = 'a:000000000001@tcp://127.0.0.1:1';
const TO = 'b:000000000002@tcp://127.0.0.1:2';
const LIMIT = 1024 * 1024;

/** Plain msgpack, as a foreign implementation would write it (used to forge bodies). */
const packr = new Packr({ useRecords: false, moreTypes: false, encodeUndefinedAsNil: true });
const HEADER = Buffer.from([MAGIC_0, MAGIC_1, PROTOCOL_VERSION, FRAME_TYPE_BATCH]);

/** A blob-flagged envelope as the kernel queues it: the bytes sit in the payload slot until encoding. */
function blobEnvelope(kind: number, fields: unknown[]): Envelope {
  return [kind | BLOB_FLAG, ...fields] as unknown as Envelope;
}

/** Encodes one batch that must fit in one multipart message with nothing rejected. */
function encodeFrames(envelopes: Envelope[], limit = LIMIT): Buffer[] {
  const { messages, rejected } = new BatchEncoder(limit).encode(FROM, TO, envelopes);
  expect(rejected).toEqual([]);
  expect(messages).toHaveLength(1);
  return messages[0]!;
}

function roundTrip(envelopes: Envelope[]): Envelope[] {
  const batch = new BatchDecoder(LIMIT).decode(encodeFrames(envelopes));
  expect(batch.fromNode).toBe(FROM);
  expect(batch.toNode).toBe(TO);
  return batch.envelopes;
}

/** Decodes a forged body (anything msgpack can hold) behind a valid header. */
function decodeBody(body: unknown, extraFrames: Uint8Array[] = [], limit = LIMIT) {
  return new BatchDecoder(limit).decode([HEADER, packr.pack(body), ...extraFrames]);
}

/** Runs `fn`, expecting a ProtocolError; returns it so its reason and message can be checked. */
function protocolError(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return error as ProtocolError;
  }
  throw new Error('expected a ProtocolError, but nothing was thrown');
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

describe('codec: round trip', () => {
  it('carries typed arrays as their class with their elements (ext 24), Uint8Array as plain bin', () => {
    const payload = { f64: new Float64Array([1.5, -2, 1e300]), nested: [new Int16Array([-3, 4])], bytes: new Uint8Array([7, 8]), big: new BigUint64Array([2n ** 63n]) };
    const encoder = new BatchEncoder(1 << 20);
    const { messages } = encoder.encode(FROM, TO, [[Kind.Send, 5, 0, payload]]);
    const [envelope] = new BatchDecoder(1 << 20).decode(messages[0]!).envelopes;
    const got = envelope![3] as typeof payload;
    expect(got.f64).toBeInstanceOf(Float64Array);
    expect([...got.f64]).toEqual([1.5, -2, 1e300]);
    expect(got.nested[0]).toBeInstanceOf(Int16Array);
    expect([...got.nested[0]!]).toEqual([-3, 4]);
    expect([...got.bytes]).toEqual([7, 8]);
    expect([...got.big]).toEqual([2n ** 63n]);
  });

  it('round-trips every envelope kind with its fields intact', () => {
    const envelopes: Envelope[] = [
      [Kind.Send, 5, 0, { hello: 'world', n: [1, 2, 3], nested: { ok: true, nothing: null } }],
      [Kind.Send, 'registered-name', 7, 'text'],
      [Kind.Call, 9, 3, 42, ['whereis', 'srv']],
      [Kind.Call, 0, 0, 1, ['hello']],
      [Kind.Reply, 3, 42, 0, { value: 1.5 }],
      [Kind.Reply, 3, 43, 1, { name: 'Error', message: 'boom', stack: 'Error: boom\n    at x', code: 'EBOOM', nodeId: FROM, pid: 9 }],
      [Kind.Link, 4, 8],
      [Kind.Unlink, 4, 8],
      [Kind.Exit, 4, 8, 'killed', 0],
      [Kind.Exit, 'srv', 8, { name: 'TypeError', message: 'x is not a function' }, 1],
      [Kind.Monitor, 11, 2, 17],
      [Kind.Demonitor, 'srv', 2, 17],
      [Kind.Down, 2, 11, 17, 'normal'],
      [Kind.Down, 2, 'srv', 18, { name: 'Error', message: 'crashed' }],
      [Kind.DeadLetter, 2, 11, 'mailbox_full', { payload: 'lost' }],
      [Kind.DeadLetter, 2, 'gone', 'noproc', 12345],
    ];
    expect(roundTrip(envelopes)).toEqual(envelopes);
  });

  it('encodes undefined as nil and keeps large integers, floats, unicode and empty containers', () => {
    const decoded = roundTrip([[Kind.Send, 1, 2, { u: undefined, big: 2 ** 40, neg: -7, f: 0.25, s: 'héllo ✓ 日本', a: [], o: {} }]]);
    expect(decoded[0]![3]).toEqual({ u: null, big: 2 ** 40, neg: -7, f: 0.25, s: 'héllo ✓ 日本', a: [], o: {} });
  });

  it('handles an empty batch and a batch of 16+ envelopes (array16 header)', () => {
    const empty = new BatchDecoder(LIMIT).decode(encodeFrames([]));
    expect(empty).toEqual({ fromNode: FROM, toNode: TO, envelopes: [] });

    const many: Envelope[] = Array.from({ length: 20 }, (_, i) => [Kind.Send, i, 0, i * 2] as Envelope);
    const frames = encodeFrames(many);
    expect(frames[1]![0]).toBe(0xdc); // array16: 20 envelopes + 2 node ids
    expect(frames[1]!.readUInt16BE(1)).toBe(22);
    expect(new BatchDecoder(LIMIT).decode(frames).envelopes).toEqual(many);
  });

  it('decodes a "__proto__" map key without touching any prototype', () => {
    // fixmap 1 { "__proto__": fixmap 1 { "polluted": true } }, written by hand so no JS object
    // with an own __proto__ key has to exist on the sending side.
    const payload = Buffer.concat([
      Buffer.from([0x81, 0xa9]),
      Buffer.from('__proto__'),
      Buffer.from([0x81, 0xa8]),
      Buffer.from('polluted'),
      Buffer.from([0xc3]),
    ]);
    const body = Buffer.concat([Buffer.from([0x93]), packr.pack(FROM), packr.pack(TO), Buffer.from([0x94, 0x01, 0x01, 0x00]), payload]);
    const batch = new BatchDecoder(LIMIT).decode([HEADER, body]);
    const message = batch.envelopes[0]![3] as Record<string, unknown>;
    expect(Object.getPrototypeOf(message)).toBe(Object.prototype);
    expect((message as { polluted?: unknown }).polluted).toBeUndefined();
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });
});

describe('codec: golden frames', () => {
  it('produces exactly the documented bytes for a fixed batch', () => {
    const frames = encodeFrames([[Kind.Send, 5, 0, 'hi']]);
    expect(frames).toHaveLength(2);
    expect([...frames[0]!]).toEqual([0x5a, 0x43, 2, 1]);
    // Computed by hand from the msgpack spec (docs/protocol.md §9):
    const expectedBody =
      '93' + // fixarray of 3: [fromNode, toNode, envelope]
      'd920' + // str8, 32 bytes
      '613a303030303030303030303031' + // "a:000000000001"
      '40' + // "@"
      '7463703a2f2f3132372e302e302e313a31' + // "tcp://127.0.0.1:1"
      'd920' + // str8, 32 bytes
      '623a303030303030303030303032' + // "b:000000000002"
      '40' + // "@"
      '7463703a2f2f3132372e302e302e313a32' + // "tcp://127.0.0.1:2"
      '94' + // fixarray of 4: the Send envelope
      '01' + // kind 1 (Send)
      '05' + // to 5
      '00' + // from 0
      'a26869'; // fixstr "hi"
    expect(hex(frames[1]!)).toBe(expectedBody);
    expect(frames[1]).toHaveLength(76);
    expect(new BatchDecoder(LIMIT).decode(frames)).toEqual({ fromNode: FROM, toNode: TO, envelopes: [[1, 5, 0, 'hi']] });
  });

  it('produces exactly the documented bytes for the same Send with a binary payload', () => {
    const frames = encodeFrames([blobEnvelope(Kind.Send, [5, 0, Uint8Array.from([1, 2, 3])])]);
    expect(frames).toHaveLength(3);
    expect(hex(frames[0]!)).toBe('5a430201');
    const expectedBody =
      '93' +
      'd920' + '613a30303030303030303030303140' + '7463703a2f2f3132372e302e302e313a31' +
      'd920' + '623a30303030303030303030303240' + '7463703a2f2f3132372e302e302e313a32' +
      '94' + // fixarray of 4
      '41' + // kind 0x41 = Send | BLOB_FLAG
      '05' + // to 5
      '00' + // from 0
      'c0'; // nil: the payload is the next frame
    expect(hex(frames[1]!)).toBe(expectedBody);
    expect(frames[1]).toHaveLength(74);
    expect(hex(frames[2]!)).toBe('010203');
  });
});

describe('codec: binary payloads as blob frames', () => {
  it('sends a binary payload as its own frame and restores it on decode', () => {
    const blob = Uint8Array.from([0, 1, 2, 254, 255, 7]);
    const envelope = blobEnvelope(Kind.Send, [5, 0, blob]);
    const frames = encodeFrames([envelope]);
    expect(frames).toHaveLength(3);
    expect(hex(frames[2]!)).toBe('000102feff07');
    // The queued envelope is left as it was (the kernel may still report it as undelivered).
    expect(envelope[0]).toBe(Kind.Send | BLOB_FLAG);
    expect(envelope[3]).toBe(blob);

    const batch = new BatchDecoder(LIMIT).decode(frames);
    expect(batch.envelopes).toHaveLength(1);
    const [kind, to, from, payload] = batch.envelopes[0]!;
    expect(kind).toBe(Kind.Send); // flag cleared
    expect(to).toBe(5);
    expect(from).toBe(0);
    expect(payload).toBeInstanceOf(Uint8Array);
    expect(payload).toBe(frames[2]); // the frame itself, no copy
    expect(hex(payload as Uint8Array)).toBe('000102feff07');
  });

  it('assigns several blob frames to their envelopes in order, mixed with inline payloads', () => {
    const envelopes = [
      blobEnvelope(Kind.Send, [1, 0, Buffer.from('first')]),
      [Kind.Send, 2, 0, 'inline'] as Envelope,
      blobEnvelope(Kind.Call, [3, 0, 9, Buffer.from('second')]),
      blobEnvelope(Kind.Reply, [4, 10, 0, Buffer.from('third')]),
      blobEnvelope(Kind.DeadLetter, [5, 'x', 'noproc', Buffer.from('fourth')]),
      blobEnvelope(Kind.Send, [6, 0, new Uint8Array(0)]), // a zero-length blob is valid
    ];
    const frames = encodeFrames(envelopes);
    expect(frames).toHaveLength(7);
    const decoded = new BatchDecoder(LIMIT).decode(frames).envelopes;
    expect(decoded.map((e) => e[0])).toEqual([Kind.Send, Kind.Send, Kind.Call, Kind.Reply, Kind.DeadLetter, Kind.Send]);
    expect(Buffer.from(decoded[0]![3] as Uint8Array).toString()).toBe('first');
    expect(decoded[1]![3]).toBe('inline');
    expect(Buffer.from(decoded[2]![4] as Uint8Array).toString()).toBe('second');
    expect(Buffer.from(decoded[3]![4] as Uint8Array).toString()).toBe('third');
    expect(Buffer.from(decoded[4]![4] as Uint8Array).toString()).toBe('fourth');
    expect(decoded[5]![3]).toHaveLength(0);
  });

  it('turns a non-Buffer Uint8Array view into a frame of exactly its bytes', () => {
    const backing = Uint8Array.from([9, 9, 1, 2, 3, 9, 9]);
    const frames = encodeFrames([blobEnvelope(Kind.Send, [1, 0, backing.subarray(2, 5)])]);
    expect(Buffer.isBuffer(frames[2])).toBe(true);
    expect(hex(frames[2]!)).toBe('010203');
  });
});

describe('codec: encoder limits and rejections', () => {
  it('rejects an envelope over maxMessageBytes with MessageTooLargeError and still encodes the rest', () => {
    const encoder = new BatchEncoder(256);
    const big = [Kind.Send, 2, 0, 'x'.repeat(6000)] as Envelope;
    const { messages, rejected } = encoder.encode(FROM, TO, [[Kind.Send, 1, 0, 'before'], big, [Kind.Send, 3, 0, 'after']]);
    expect(rejected).toHaveLength(1);
    expect(rejected[0]!.envelope).toBe(big);
    const error = rejected[0]!.error as MessageTooLargeError;
    expect(error).toBeInstanceOf(MessageTooLargeError);
    expect(error.limitBytes).toBe(256);
    expect(error.sizeBytes).toBeGreaterThan(6000);
    expect(error.code).toBe('ETOOLARGE');
    const delivered = messages.flatMap((frames) => new BatchDecoder(256).decode(frames).envelopes);
    expect(delivered).toEqual([
      [Kind.Send, 1, 0, 'before'],
      [Kind.Send, 3, 0, 'after'],
    ]);
  });

  it('rejects an envelope over maxMessageBytes even when the whole body fits in maxMessageBytes + 4096', () => {
    // docs/protocol.md §8: maxMessageBytes bounds each encoded envelope on the sender; the
    // 4096-byte body overhead is for the node ids and array header, not for the envelope.
    const encoder = new BatchEncoder(1000);
    const over = [Kind.Send, 1, 0, 'x'.repeat(1500)] as Envelope;
    const alone = encoder.encode(FROM, TO, [over]);
    expect(alone.rejected.map((r) => r.error.constructor)).toEqual([MessageTooLargeError]);
    expect(alone.messages).toEqual([]);
    // Nor may it slip through beside a small envelope while the batch body stays under 1000 + 4096.
    const beside = encoder.encode(FROM, TO, [[Kind.Send, 2, 0, 'small'], over]);
    expect(beside.rejected.map((r) => r.envelope)).toEqual([over]);
  });

  it('rejects an envelope that cannot be encoded with EncodeError and still encodes the rest', () => {
    const encoder = new BatchEncoder(LIMIT);
    const bad = [Kind.Send, 2, 0, { n: 2n ** 70n }] as Envelope;
    const { messages, rejected } = encoder.encode(FROM, TO, [[Kind.Send, 1, 0, 'ok'], bad, blobEnvelope(Kind.Send, [3, 0, Buffer.from('bin')])]);
    expect(rejected).toHaveLength(1);
    expect(rejected[0]!.envelope).toBe(bad);
    expect(rejected[0]!.error).toBeInstanceOf(EncodeError);
    expect(rejected[0]!.error.code).toBe('EENCODE');
    const delivered = messages.flatMap((frames) => new BatchDecoder(LIMIT).decode(frames).envelopes);
    expect(delivered).toHaveLength(2);
    expect(delivered[0]).toEqual([Kind.Send, 1, 0, 'ok']);
    expect(Buffer.from(delivered[1]![3] as Uint8Array).toString()).toBe('bin');
  });

  it('splits a batch into several messages of at most maxBatchBytes, in order, blobs with their envelopes', () => {
    const encoder = new BatchEncoder(LIMIT, 200);
    const envelopes: Envelope[] = [];
    for (let i = 0; i < 30; i++) {
      envelopes.push(i % 7 === 3 ? blobEnvelope(Kind.Send, [i, 0, Buffer.from(`blob-${i}`)]) : ([Kind.Send, i, 0, 'y'.repeat(40)] as Envelope));
    }
    envelopes.push([Kind.Send, 99, 0, { n: 2n ** 70n }] as Envelope); // forces the one-by-one path
    const { messages, rejected } = encoder.encode(FROM, TO, envelopes);
    expect(rejected).toHaveLength(1);
    expect(messages.length).toBeGreaterThan(1);
    const decoded = messages.map((frames) => new BatchDecoder(LIMIT).decode(frames));
    for (const batch of decoded) {
      expect(batch.fromNode).toBe(FROM);
      expect(batch.toNode).toBe(TO);
    }
    const all = decoded.flatMap((batch) => batch.envelopes);
    expect(all.map((e) => e[1])).toEqual(Array.from({ length: 30 }, (_, i) => i));
    for (const envelope of all) {
      const i = envelope[1] as number;
      if (i % 7 === 3) expect(Buffer.from(envelope[3] as Uint8Array).toString()).toBe(`blob-${i}`);
      else expect(envelope[3]).toBe('y'.repeat(40));
    }
    for (const frames of messages) expect(frames[1]!.length).toBeLessThanOrEqual(200 + BODY_OVERHEAD_BYTES);
  });
});

describe('codec: rejection of malformed frames', () => {
  const valid = (): Buffer[] => encodeFrames([[Kind.Send, 5, 0, 'hi']]);

  it("rejects a wrong magic with reason 'magic'", () => {
    const frames = valid();
    frames[0] = Buffer.from([0x5a, 0x44, 2, 1]);
    expect(protocolError(() => new BatchDecoder(LIMIT).decode(frames)).reason).toBe('magic');
    frames[0] = Buffer.from([0x00, 0x43, 2, 1]);
    expect(protocolError(() => new BatchDecoder(LIMIT).decode(frames)).reason).toBe('magic');
    // A header of the wrong length is not ours either.
    frames[0] = Buffer.from([0x5a, 0x43, 2]);
    expect(protocolError(() => new BatchDecoder(LIMIT).decode(frames)).reason).toBe('magic');
  });

  it("rejects another protocol version with reason 'version'", () => {
    const frames = valid();
    frames[0] = Buffer.from([0x5a, 0x43, 1, 1]);
    const error = protocolError(() => new BatchDecoder(LIMIT).decode(frames));
    expect(error.reason).toBe('version');
    expect(error.code).toBe('EPROTO');
  });

  it("rejects an unknown frame type with reason 'frame-type'", () => {
    const frames = valid();
    frames[0] = Buffer.from([0x5a, 0x43, 2, 2]);
    expect(protocolError(() => new BatchDecoder(LIMIT).decode(frames)).reason).toBe('frame-type');
  });

  it("rejects fewer than 2 frames with reason 'truncated'", () => {
    expect(protocolError(() => new BatchDecoder(LIMIT).decode([])).reason).toBe('truncated');
    expect(protocolError(() => new BatchDecoder(LIMIT).decode([HEADER])).reason).toBe('truncated');
  });

  it("rejects a body cut off mid-msgpack with reason 'decode'", () => {
    const frames = valid();
    const body = frames[1]!;
    for (const cut of [1, 3, body.length - 1]) {
      const error = protocolError(() => new BatchDecoder(LIMIT).decode([HEADER, body.subarray(0, cut)]));
      expect(error.reason).toBe('decode');
    }
    expect(protocolError(() => new BatchDecoder(LIMIT).decode([HEADER, Buffer.alloc(0)])).reason).toBe('decode');
  });

  it("rejects trailing bytes after the body with reason 'decode'", () => {
    const body = Buffer.concat([valid()[1]!, Buffer.from([0x01])]);
    expect(protocolError(() => new BatchDecoder(LIMIT).decode([HEADER, body])).reason).toBe('decode');
  });

  it("rejects a body that is not [fromNode, toNode, ...] with reason 'shape'", () => {
    for (const body of [{ fromNode: FROM }, 'just a string', 42, null, [], [FROM]]) {
      const error = protocolError(() => decodeBody(body));
      expect(error.reason).toBe('shape');
      expect(error.message).toMatch(/not an array/);
    }
    for (const body of [[1, TO], [FROM, 2], [FROM, null], [[FROM], TO]]) {
      const error = protocolError(() => decodeBody(body));
      expect(error.reason).toBe('shape');
      expect(error.message).toMatch(/node ids must be strings/);
    }
  });

  it('accepts an empty toNode (a hello batch)', () => {
    expect(decodeBody([FROM, '', [Kind.Call, 0, 0, 1, ['hello']]])).toEqual({
      fromNode: FROM,
      toNode: '',
      envelopes: [[Kind.Call, 0, 0, 1, ['hello']]],
    });
  });

  it.each([
    ['kind 0', [0, 1, 0, 'x'], /unknown kind/],
    ['kind 11', [11, 1, 0, 'x'], /unknown kind/],
    ['kind 63', [63, 1, 0, 'x'], /unknown kind/],
    ['flag with kind 0', [BLOB_FLAG, 1, 0, null], /unknown kind/],
    ['flag with kind 11', [BLOB_FLAG | 11, 1, 0, null], /unknown kind/],
    ['kind 0x81', [0x81, 1, 0, 'x'], /unknown kind/],
    ['negative kind', [-1, 1, 0, 'x'], /unknown kind/],
    ['string kind', ['1', 1, 0, 'x'], /kind is not an integer/],
    ['float kind', [1.5, 1, 0, 'x'], /kind is not an integer/],
    ['envelope not an array', { kind: 1 }, /not an array/],
  ])('rejects an unknown kind (%s) with reason shape', (_label, envelope, message) => {
    const error = protocolError(() => decodeBody([FROM, TO, envelope]));
    expect(error.reason).toBe('shape');
    expect(error.message).toMatch(message);
    expect(error.message).toMatch(/^envelope 0:/);
  });

  it.each([
    ['Send with 3 fields', [Kind.Send, 1, 0]],
    ['Send with 5 fields', [Kind.Send, 1, 0, 'x', 'extra']],
    ['Call with 4 fields', [Kind.Call, 1, 0, 1]],
    ['Reply with 4 fields', [Kind.Reply, 1, 1, 0]],
    ['Link with 4 fields', [Kind.Link, 1, 2, 3]],
    ['Unlink with 2 fields', [Kind.Unlink, 1]],
    ['Exit with 4 fields', [Kind.Exit, 1, 2, 'normal']],
    ['Monitor with 3 fields', [Kind.Monitor, 1, 2]],
    ['Demonitor with 5 fields', [Kind.Demonitor, 1, 2, 3, 4]],
    ['Down with 4 fields', [Kind.Down, 1, 2, 3]],
    ['DeadLetter with 4 fields', [Kind.DeadLetter, 1, 2, 'noproc']],
  ])('rejects wrong arity (%s)', (_label, envelope) => {
    const error = protocolError(() => decodeBody([FROM, TO, envelope]));
    expect(error.reason).toBe('shape');
    expect(error.message).toMatch(/expected \d fields, got \d/);
  });

  it.each([
    ['negative to', [Kind.Send, -1, 0, 'x']],
    ['negative from', [Kind.Send, 1, -1, 'x']],
    ['fractional to', [Kind.Send, 1.5, 0, 'x']],
    ['fractional from', [Kind.Call, 1, 0.5, 1, 'x']],
    ['negative ref', [Kind.Call, 1, 0, -3, 'x']],
    ['nil from', [Kind.Monitor, 1, null, 1]],
    ['string Reply.to', [Kind.Reply, 'name', 1, 0, 'x']],
    ['fractional Reply.ref', [Kind.Reply, 1, 1.25, 0, 'x']],
    ['string Link.to', [Kind.Link, 'name', 1]],
    ['negative Unlink.from', [Kind.Unlink, 1, -1]],
    ['negative Down.ref', [Kind.Down, 1, 2, -1, 'normal']],
    ['string DeadLetter.to', [Kind.DeadLetter, 'x', 2, 'noproc', null]],
  ])('rejects ids that are not non-negative integers (%s)', (_label, envelope) => {
    const error = protocolError(() => decodeBody([FROM, TO, envelope]));
    expect(error.reason).toBe('shape');
    expect(error.message).toMatch(/must be a non-negative integer/);
  });

  it('rejects empty or over-long target names', () => {
    for (const name of ['', 'n'.repeat(256)]) {
      const error = protocolError(() => decodeBody([FROM, TO, [Kind.Send, name, 0, 'x']]));
      expect(error.reason).toBe('shape');
      expect(error.message).toMatch(/name must be 1-255 characters/);
    }
    expect(decodeBody([FROM, TO, [Kind.Send, 'n'.repeat(255), 0, 'x']]).envelopes).toHaveLength(1);
  });

  it('rejects reply status 2 and an error reply without {name, message}', () => {
    const status = protocolError(() => decodeBody([FROM, TO, [Kind.Reply, 1, 1, 2, 'x']]));
    expect(status.reason).toBe('shape');
    expect(status.message).toMatch(/reply status must be 0 or 1/);
    for (const payload of ['boom', null, { name: 'Error' }, { message: 'boom' }, { name: 1, message: 'boom' }]) {
      const error = protocolError(() => decodeBody([FROM, TO, [Kind.Reply, 1, 1, 1, payload]]));
      expect(error.reason).toBe('shape');
      expect(error.message).toMatch(/error reply must carry \{name, message\}/);
    }
  });

  it('rejects an Exit linked flag other than 0/1 and a non-string dead-letter reason', () => {
    const exit = protocolError(() => decodeBody([FROM, TO, [Kind.Exit, 1, 2, 'normal', 2]]));
    expect(exit.reason).toBe('shape');
    expect(exit.message).toMatch(/linked flag/);
    const dead = protocolError(() => decodeBody([FROM, TO, [Kind.DeadLetter, 1, 2, 7, null]]));
    expect(dead.reason).toBe('shape');
    expect(dead.message).toMatch(/dead-letter reason must be a string/);
  });

  it('names the index of the bad envelope', () => {
    const error = protocolError(() => decodeBody([FROM, TO, [Kind.Send, 1, 0, 'ok'], [Kind.Send, 1, 0, 'ok'], [Kind.Send, -1, 0, 'bad']]));
    expect(error.message).toMatch(/^envelope 2:/);
  });

  it('rejects the blob flag on a kind that carries no payload', () => {
    for (const envelope of [
      [Kind.Link | BLOB_FLAG, 1, 2],
      [Kind.Unlink | BLOB_FLAG, 1, 2],
      [Kind.Monitor | BLOB_FLAG, 1, 2, 3],
      [Kind.Down | BLOB_FLAG, 1, 2, 3, null],
      [Kind.Exit | BLOB_FLAG, 1, 2, null, 0],
    ]) {
      const error = protocolError(() => decodeBody([FROM, TO, envelope], [Buffer.from('blob')]));
      expect(error.reason).toBe('shape');
      expect(error.message).toMatch(/cannot carry a blob/);
    }
  });

  it('rejects a blob envelope whose payload slot is not nil', () => {
    const error = protocolError(() => decodeBody([FROM, TO, [Kind.Send | BLOB_FLAG, 1, 0, 'inline too']], [Buffer.from('blob')]));
    expect(error.reason).toBe('shape');
    expect(error.message).toMatch(/must hold nil/);
  });

  it("rejects a blob flag whose blob frame is missing with reason 'truncated'", () => {
    const one = protocolError(() => decodeBody([FROM, TO, [Kind.Send | BLOB_FLAG, 1, 0, null]]));
    expect(one.reason).toBe('truncated');
    const second = protocolError(() =>
      decodeBody([FROM, TO, [Kind.Send | BLOB_FLAG, 1, 0, null], [Kind.Send | BLOB_FLAG, 2, 0, null]], [Buffer.from('only one')]),
    );
    expect(second.reason).toBe('truncated');
    expect(second.message).toMatch(/envelope 1/);
  });

  it("rejects an extra blob frame that no envelope refers to with reason 'shape'", () => {
    const frames = [...valid(), Buffer.from('stray')];
    const error = protocolError(() => new BatchDecoder(LIMIT).decode(frames));
    expect(error.reason).toBe('shape');
    expect(error.message).toMatch(/1 blob frame\(s\) not referred to/);
  });

  it("rejects an oversize body and an oversize blob with reason 'oversize'", () => {
    const small = 64;
    // The body may exceed maxMessageBytes by the batch overhead, but not more.
    const fits = packr.pack([FROM, TO, [Kind.Send, 1, 0, 'x'.repeat(small + BODY_OVERHEAD_BYTES - 200)]]);
    expect(fits.length).toBeLessThanOrEqual(small + BODY_OVERHEAD_BYTES);
    expect(new BatchDecoder(small).decode([HEADER, fits]).envelopes).toHaveLength(1);

    const body = packr.pack([FROM, TO, [Kind.Send, 1, 0, 'x'.repeat(small + BODY_OVERHEAD_BYTES)]]);
    expect(protocolError(() => new BatchDecoder(small).decode([HEADER, body])).reason).toBe('oversize');

    const blobEnvelope = packr.pack([FROM, TO, [Kind.Send | BLOB_FLAG, 1, 0, null]]);
    expect(new BatchDecoder(small).decode([HEADER, blobEnvelope, Buffer.alloc(small)]).envelopes).toHaveLength(1);
    expect(protocolError(() => new BatchDecoder(small).decode([HEADER, blobEnvelope, Buffer.alloc(small + 1)])).reason).toBe('oversize');
  });
});

describe('codec: batch node ids', () => {
  it('writes the same body bytes as packing [fromNode, toNode, ...envelopes] whole, at every array header size and with ids too long to put in front', () => {
    const encoder = new BatchEncoder(LIMIT);
    const longFrom = `a:000000000001@tcp://${'h'.repeat(200)}:1`;
    for (const [from, to] of [[FROM, TO], [FROM, ''], [longFrom, TO], [FROM, TO]]) {
      for (const count of [0, 1, 13, 14, 15, 16, 40]) {
        const envelopes = Array.from({ length: count }, (_, i) => [Kind.Send, i + 1, 0, { i }] as Envelope);
        const { messages } = encoder.encode(from!, to!, envelopes);
        expect(messages[0]![1]).toEqual(packr.pack([from, to, ...envelopes]));
      }
    }
    // Bodies past msgpackr's 8 KiB buffer, which it grows while packing (the room in front moves with it).
    const large = Array.from({ length: 3 }, (_, i) => [Kind.Send, i + 1, 0, 'x'.repeat(20_000)] as Envelope);
    expect(encoder.encode(FROM, TO, large).messages[0]![1]).toEqual(packr.pack([FROM, TO, ...large]));
  });

  it('decodes the same result when it reuses the node ids of the batch before (fix and 16-bit array headers, no envelope, blobs)', () => {
    const fresh = () => new BatchDecoder(LIMIT);
    const cached = new BatchDecoder(LIMIT);
    const batches: Envelope[][] = [
      [[Kind.Send, 1, 0, 'x']],
      [[Kind.Call, 2, 0, 7, { seq: 1 }], [Kind.Reply, 3, 7, 0, ['v']]],
      Array.from({ length: 40 }, (_, i) => [Kind.Send, i + 1, 0, i] as Envelope), // array16 header
      [],
      [blobEnvelope(Kind.Send, [1, 0, Buffer.from('blob')])],
      [[Kind.Send, 1, 0, 'x']],
    ];
    let fromNode: string | undefined;
    for (const envelopes of batches) {
      const frames = encodeFrames(envelopes);
      const got = cached.decode(frames);
      expect(got).toEqual(fresh().decode(frames));
      // The ids decoded once are handed up again (the same string objects).
      if (fromNode !== undefined) expect(got.fromNode).toBe(fromNode);
      fromNode = got.fromNode;
    }
  });

  it('remembers the ids per connection, so peers taking turns each reuse their own', () => {
    const decoder = new BatchDecoder(LIMIT);
    const OTHER = 'c:000000000003@tcp://127.0.0.1:3';
    const routing = (n: number) => Buffer.from([0, 0, 0, 0, n]);
    const batch = (n: number, from: string) => [routing(n), HEADER, packr.pack([from, TO, [Kind.Send, 1, 0, n]])];
    const first = [decoder.decode(batch(1, FROM), 1, 1).fromNode, decoder.decode(batch(2, OTHER), 1, 2).fromNode];
    for (let round = 0; round < 3; round++) {
      expect(decoder.decode(batch(1, FROM), 1, 1).fromNode).toBe(first[0]);
      expect(decoder.decode(batch(2, OTHER), 1, 2).fromNode).toBe(first[1]);
    }
    // A connection whose peer now sends other ids gets them decoded and checked afresh.
    expect(decoder.decode(batch(1, OTHER), 1, 1).fromNode).toBe(OTHER);
    expect(protocolError(() => decoder.decode(batch(1, 'not-a-node-id'), 1, 1)).reason).toBe('shape');
  });

  it('checks the envelopes of a batch whose node ids it reused: a wrong count or a bad envelope is refused', () => {
    const decoder = new BatchDecoder(LIMIT);
    decoder.decode([HEADER, packr.pack([FROM, TO, [Kind.Send, 1, 0, 'x']])]);
    const ids = Buffer.concat([packr.pack(FROM), packr.pack(TO)]);
    // The header says 2 envelopes, the body holds 1 after the ids.
    const short = Buffer.concat([Buffer.from([0x94]), ids, packr.pack([Kind.Send, 1, 0, 'x'])]);
    expect(protocolError(() => decoder.decode([HEADER, short])).reason).toBe('shape');
    // The header says 1 envelope (read in place), the body holds 2: the bytes left over are refused.
    const long = Buffer.concat([Buffer.from([0x93]), ids, packr.pack([Kind.Send, 1, 0, 'x']), packr.pack([Kind.Send, 1, 0, 'y'])]);
    expect(protocolError(() => decoder.decode([HEADER, long])).reason).toBe('decode');
    const bad = Buffer.concat([Buffer.from([0x93]), ids, packr.pack([Kind.Send, -1, 0, 'x'])]);
    expect(protocolError(() => decoder.decode([HEADER, bad])).reason).toBe('shape');
    const junk = Buffer.concat([Buffer.from([0x93]), ids, Buffer.from([0x92, 0x01])]); // an envelope cut short
    expect(protocolError(() => decoder.decode([HEADER, junk])).reason).toBe('decode');
    expect(decoder.decode([HEADER, packr.pack([FROM, TO, [Kind.Send, 1, 0, 'y']])]).envelopes).toEqual([[Kind.Send, 1, 0, 'y']]);
  });

  it('checks each sender id it has not just seen: a valid one remembered does not let a bad one through', () => {
    const decoder = new BatchDecoder(LIMIT);
    const batch = (from: string) => [Buffer.from('routing-id'), HEADER, packr.pack([from, TO, [Kind.Send, 1, 0, 'x']])];
    // Frames after a ROUTER's routing id are decoded in place (first = 1).
    expect(decoder.decode(batch(FROM), 1).fromNode).toBe(FROM);
    expect(decoder.decode(batch(FROM), 1).fromNode).toBe(FROM);
    expect(protocolError(() => decoder.decode(batch('not-a-node-id'), 1)).reason).toBe('shape');
    expect(decoder.decode(batch(FROM), 1).envelopes).toEqual([[Kind.Send, 1, 0, 'x']]);
  });

  it("rejects a batch whose fromNode is not a node id, since answers could not be addressed ('shape')", () => {
    const error = protocolError(() => decodeBody(['not-a-node-id', TO, [Kind.Send, 1, 0, 'x']]));
    expect(error.reason).toBe('shape');
    expect(error.message).toContain('fromNode is not a node id');
  });

  it("rejects node ids longer than 255 characters ('shape')", () => {
    const longFrom = `a:000000000001@tcp://${'h'.repeat(250)}:1`;
    expect(protocolError(() => decodeBody([longFrom, TO, [Kind.Send, 1, 0, 'x']])).reason).toBe('shape');
    const longTo = 'b'.repeat(256);
    expect(protocolError(() => decodeBody([FROM, longTo, [Kind.Send, 1, 0, 'x']])).reason).toBe('shape');
  });

  it('accepts the empty toNode of a hello batch', () => {
    expect(decodeBody([FROM, '', [Kind.Call, 0, 0, 1, ['hello']]]).toNode).toBe('');
  });
});

describe('codec: fuzz', () => {
  it('random bodies either decode or raise ProtocolError, never anything else', () => {
    const random = prng(0x5eed);
    const decoder = new BatchDecoder(LIMIT);
    let decoded = 0;
    let rejected = 0;
    const tryBody = (body: Uint8Array, extra: Uint8Array[] = []) => {
      try {
        decoder.decode([HEADER, body, ...extra]);
        decoded++;
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw new Error(`non-ProtocolError for body ${hex(body)}: ${String(error)}`);
        rejected++;
      }
    };

    // 500 purely random bodies, biased towards msgpack array headers so some get past the first byte.
    for (let i = 0; i < 500; i++) {
      const length = Math.floor(random() * 48);
      const body = new Uint8Array(length);
      for (let j = 0; j < length; j++) body[j] = Math.floor(random() * 256);
      if (length > 0 && random() < 0.5) body[0] = 0x90 | Math.floor(random() * 16);
      tryBody(body);
    }

    // And 500 valid bodies with a few bytes flipped, which reach envelope validation far more often.
    const base = encodeFrames([
      [Kind.Send, 5, 0, { a: [1, 2, 'three'] }],
      [Kind.Reply, 3, 42, 1, { name: 'Error', message: 'boom' }],
      blobEnvelope(Kind.Send, [1, 0, Buffer.from('blob')]),
    ]);
    for (let i = 0; i < 500; i++) {
      const body = Buffer.from(base[1]!);
      const flips = 1 + Math.floor(random() * 3);
      for (let f = 0; f < flips; f++) body[Math.floor(random() * body.length)] = Math.floor(random() * 256);
      tryBody(body, random() < 0.5 ? [base[2]!] : []);
    }

    expect(decoded + rejected).toBe(1000);
    expect(rejected).toBeGreaterThan(0);
    // The decoder is still sound after all that.
    expect(decoder.decode(encodeFrames([[Kind.Send, 5, 0, 'hi']])).envelopes).toEqual([[Kind.Send, 5, 0, 'hi']]);
  });
});
