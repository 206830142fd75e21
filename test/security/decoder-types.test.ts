import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../lib/index.js';
import { ObjectRef } from '../../lib/task/object-ref.js';
import { BatchDecoder, BatchEncoder } from '../../lib/wire/codec.js';
import { Kind } from '../../lib/wire/kinds.js';

const FROM = 'mallory:000000000001@tcp://127.0.0.1:1';
const TO = 'victim:000000000002@tcp://127.0.0.1:2';

/** A well-formed batch whose one Send carries `payload`, packed by `packr` (msgpackr's own types on). */
function batchWith(packr: Packr, payload: unknown): Uint8Array[] {
  const header = new BatchEncoder(1 << 20).encode(FROM, TO, [[Kind.Send, 'inbox', 1, null]]).messages[0]![0]!;
  return [header, packr.pack([FROM, TO, [Kind.Send, 'inbox', 1, payload]])];
}

describe('the decoder admits only the documented msgpack types', () => {
  const decoder = new BatchDecoder(1 << 20);
  const moreTypes = new Packr({ useRecords: false, moreTypes: true, useBigIntExtension: true });
  const cycle: { self?: unknown } = {};
  cycle.self = cycle;
  const forbidden: [string, Packr, unknown][] = [
    ['BigInt', moreTypes, 2n ** 80n],
    ['Error', moreTypes, new Error('boo')],
    ['Set', moreTypes, new Set([1, 2])],
    ['RegExp', moreTypes, /x+/g],
    ['typed array', moreTypes, new Float64Array([1, 2])],
    ['structured-clone cycle', new Packr({ useRecords: false, structuredClone: true }), cycle],
  ];

  it.each(forbidden)('drops a frame carrying a %s as ProtocolError (decode)', (_, packr, payload) => {
    let error: unknown;
    try {
      decoder.decode(batchWith(packr, payload));
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as ProtocolError).reason).toBe('decode');
  });

  it('still admits the timestamp and the application types', () => {
    const plain = new Packr({ useRecords: false, moreTypes: false });
    const when = new Date(1_700_000_000_123);
    const ref = new ObjectRef(7, FROM);
    const { envelopes } = decoder.decode(batchWith(plain, { when, ref, bytes: new Uint8Array([1, 2]) }));
    const payload = envelopes[0]![3] as { when: Date; ref: ObjectRef; bytes: Uint8Array };
    expect(payload.when).toEqual(when);
    expect(payload.ref).toBeInstanceOf(ObjectRef);
    expect([...payload.bytes]).toEqual([1, 2]);
  });
});
