import { describe, expect, it } from 'vitest';
import { formatKillWorker, isClusterRequest, parseKillWorker } from '../../lib/cluster/daemon-protocol.js';
import { shipFunction } from '../../lib/task/remote-function.js';
import { formatCancel, formatRun, parseCancel, parseRun, parseRunAnswer } from '../../lib/task/worker-protocol.js';

const code = shipFunction((x: number) => x * 2);
const origin = 'a:000000000001@tcp://127.0.0.1:1';

describe('worker protocol (protocol.md §11.2)', () => {
  it('formats run in its shortest form and parses what it formats', () => {
    expect(formatRun(1, code, [2], null)).toEqual(['run', 1, code, [2]]);
    expect(formatRun(1, code, [2], origin)).toEqual(['run', 1, code, [2], origin]);
    expect(formatRun(1, code, [2], null, { kind: 'job' })).toEqual(['run', 1, code, [2], null, { kind: 'job' }]);
    expect(parseRun(formatRun(3, code, [], origin, { kind: 'mr-map' }))).toEqual({ id: 3, code, args: [], origin, context: { kind: 'mr-map' } });
    expect(parseRun(formatRun(3, code, [], null))).toEqual({ id: 3, code, args: [], origin: undefined, context: undefined });
  });

  it('refuses malformed run requests field by field', () => {
    expect(parseRun(['run', '3', code, []])).toBeUndefined(); // id must be a number
    expect(parseRun(['run', 3, { ...code, kind: 'other' }, []])).toBeUndefined();
    expect(parseRun(['run', 3, code, 'args'])).toBeUndefined();
    expect(parseRun(['run', 3, code, [], 7])).toBeUndefined(); // origin: str or nil
    expect(parseRun(['run', 3, code, [], null, { kind: 1 }])).toBeUndefined();
    expect(parseRun(['run', 3, code, [], null, undefined, 'extra'])).toBeUndefined();
    expect(parseRun(['walk', 3, code, []])).toBeUndefined();
  });

  it('parses cancel and run answers', () => {
    expect(parseCancel(formatCancel(origin, 4, true))).toEqual({ owner: origin, id: 4, force: true });
    expect(parseCancel(['cancel', origin, '4', false])).toBeUndefined();
    expect(parseRunAnswer([0, 'v'])).toEqual({ value: 'v' });
    expect(parseRunAnswer([1])).toEqual({ kept: true });
    expect(parseRunAnswer([2])).toBeUndefined();
    expect(parseRunAnswer('v')).toBeUndefined();
  });
});

describe('daemon protocol (protocol.md §11.1)', () => {
  it('recognises cluster requests and kill-worker messages', () => {
    expect(isClusterRequest(['cluster'])).toBe(true);
    expect(isClusterRequest(['clusters'])).toBe(false);
    expect(parseKillWorker(formatKillWorker(origin))).toBe(origin);
    expect(parseKillWorker(['kill-worker', 5])).toBeUndefined();
  });
});
