import { describe, expect, it } from 'vitest';
import { formatKillWorker, isClusterRequest, parseKillWorker } from '../../lib/cluster/daemon-protocol.js';
import { shipFunction } from '../../lib/task/remote-function.js';
import { formatCancel, formatRun, parseCancel, parseRun, parseRunAnswer } from '../../lib/task/worker-protocol.js';
import { formatFetch, formatFile, formatFree, formatResolve, heldKey, ownerOfKey, parseFree, parseObjectsRequest, parseResolution } from '../../lib/task/objects-protocol.js';
import * as jobs from '../../lib/jobs/job-protocol.js';
import { formatMapContext, formatReduceContext, mapOutputKey, parseMapContext, parseReduceContext } from '../../lib/mapreduce/mr-protocol.js';
import * as streams from '../../lib/stream/stream-protocol.js';
import { formatActorNew, formatMethodCall, isActorNewRequest, parseActorNew, parseMethodCall } from '../../lib/actor/actor-protocol.js';

const code = shipFunction((x: number) => x * 2);
const origin = 'a:000000000001@tcp://127.0.0.1:1';

describe('worker protocol (protocol.md §11.2)', () => {
  it('formats run in its shortest form and parses what it formats', () => {
    expect(formatRun(1, code, [2], null)).toEqual(['run', 1, code, [2]]);
    expect(formatRun(1, code, [2], origin)).toEqual(['run', 1, code, [2], origin]);
    expect(formatRun(1, code, [2], null, { kind: 'job' })).toEqual(['run', 1, code, [2], null, { kind: 'job' }]);
    expect(parseRun(formatRun(3, code, [], origin, { kind: 'mr-map' }))).toEqual({ id: 3, code, key: undefined, args: [], origin, context: { kind: 'mr-map' } });
    expect(parseRun(formatRun(3, code, [], null))).toEqual({ id: 3, code, key: undefined, args: [], origin: undefined, context: undefined });
  });

  it('parses code shipped with a key, and a key alone naming code sent before', () => {
    const keyed = { ...code, key: 4 };
    expect(parseRun(formatRun(3, keyed, [], null))).toMatchObject({ code: keyed, key: 4 });
    expect(parseRun(formatRun(5, 4, [1], null))).toEqual({ id: 5, code: 4, key: undefined, args: [1], origin: undefined, context: undefined });
    expect(parseRun(['run', 3, -1, []])).toBeUndefined(); // a key is a uint
    expect(parseRun(['run', 3, 1.5, []])).toBeUndefined();
    expect(parseRun(['run', 3, { ...code, key: 'k' }, []])).toBeUndefined();
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

describe('actor protocol (protocol.md §11.2 actor:new, §11.4)', () => {
  it('parses what it formats', () => {
    const options = { name: 'counter', maxConcurrency: 2, owner: origin };
    expect(parseActorNew(formatActorNew(code, [1], options))).toEqual({ code, args: [1], options });
    expect(parseActorNew(formatActorNew(code, [], {}))).toEqual({ code, args: [], options: {} });
    expect(parseMethodCall(formatMethodCall(7, 'add', [2]))).toEqual({ refId: 7, method: 'add', args: [2] });
  });

  it('refuses malformed requests field by field, while still recognising an actor:new to answer it', () => {
    expect(isActorNewRequest(['actor:new', 'not code'])).toBe(true);
    expect(parseActorNew(['actor:new', 'not code', [], {}])).toBeUndefined();
    expect(parseActorNew(['actor:new', code, 'args', {}])).toBeUndefined();
    expect(parseActorNew(['actor:new', code, [], null])).toBeUndefined();
    expect(parseActorNew(['actor:new', code, [], { name: 7 }])).toBeUndefined();
    expect(parseActorNew(['actor:new', code, [], { name: '' }])).toBeUndefined();
    expect(parseActorNew(['actor:new', code, [], { maxConcurrency: '2' }])).toBeUndefined();
    expect(parseActorNew(['actor:new', code, [], { owner: 1 }])).toBeUndefined();
    expect(parseActorNew(['actor:new', code, [], {}, 'extra'])).toBeUndefined();
    expect(parseMethodCall(['m', -1, 'add', []])).toBeUndefined();
    expect(parseMethodCall(['m', 1.5, 'add', []])).toBeUndefined();
    expect(parseMethodCall(['m', 1, 2, []])).toBeUndefined();
    expect(parseMethodCall(['m', 1, 'add', 'args'])).toBeUndefined();
    expect(parseMethodCall(['n', 1, 'add', []])).toBeUndefined();
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

describe('objects protocol (protocol.md §11.3)', () => {
  it('parses what it formats and refuses malformed requests', () => {
    expect(parseObjectsRequest(formatResolve(7))).toEqual(['resolve', 7]);
    expect(parseObjectsRequest(formatFetch('k'))).toEqual(['fetch', 'k']);
    expect(parseObjectsRequest(formatFile('ab'))).toEqual(['file', 'ab']);
    expect(parseObjectsRequest(['resolve', '7'])).toBeUndefined();
    expect(parseObjectsRequest(['resolve', 1.5])).toBeUndefined();
    expect(parseObjectsRequest(['fetch', 'k', 'extra'])).toBeUndefined();
    expect(parseFree(formatFree(['a', 'b']))).toEqual(['a', 'b']);
    expect(parseFree(['free', ['a', 3]])).toEqual(['a']);
    expect(parseFree(['free', 'a'])).toBeUndefined();
    expect(parseResolution([1, origin, 'k'])).toEqual([1, origin, 'k']);
    expect(parseResolution([2, { name: 'E', message: 'm' }])).toEqual([2, { name: 'E', message: 'm' }]);
    expect(parseResolution([2, 'oops'])).toBeUndefined();
    expect(ownerOfKey(heldKey(origin, 4))).toBe(origin);
    expect(ownerOfKey('no-bar')).toBeUndefined();
  });
});

describe('job protocol (protocol.md §11.5)', () => {
  it('parses reports, cleanup, contexts and store messages', () => {
    const bytes = new Uint8Array([1]);
    expect(jobs.parseJobReport(jobs.formatStarted(1, origin, 5))).toEqual(['started', 1, origin, 5]);
    expect(jobs.parseJobReport(jobs.formatProvisional(1, 'p'))).toEqual(['provisional', 1, 'p']);
    expect(jobs.parseJobReport(jobs.formatFileBack(1, 'f', bytes))).toEqual(['file', 1, 'f', bytes]);
    expect(jobs.parseJobReport(['file', 1, 'f', 'not bytes'])).toBeUndefined();
    expect(jobs.parseJobReport(['started', '1', origin, 5])).toBeUndefined();
    expect(jobs.parseJobCleanup(jobs.formatJobCleanup('c'))).toBe('c');
    expect(jobs.parseJobContext({ kind: 'job', cluster: 'c', job: 2 })).toEqual({ kind: 'job', cluster: 'c', job: 2 });
    expect(jobs.parseJobContext({ kind: 'job', cluster: 'c', job: '2' })).toBeUndefined();
    expect(jobs.parseStoreMessage(jobs.formatForget('c'))).toEqual(['forget', 'c']);
    expect(jobs.parseStoreMessage(jobs.formatRecord([]))).toEqual(['record', []]);
    expect(jobs.parseStoreRequest(jobs.formatRecover('c'))).toEqual(['recover', 'c']);
    expect(jobs.parseStoreRequest(jobs.CLUSTERS_REQUEST)).toEqual(['clusters']);
    expect(jobs.isJobRecord({ cluster: 'c', job: 1, args: [], owner: origin, outcome: {} })).toBe(true);
    expect(jobs.isJobRecord({ cluster: 'c', job: 1, args: [], outcome: {} })).toBe(false); // no owner
  });
});

describe('MapReduce protocol (protocol.md §11.6)', () => {
  it('parses the contexts it formats and refuses wrong field types', () => {
    const map = formatMapContext('r', 0, 2, { combine: code, fold: undefined, files: undefined });
    expect(map).toEqual({ kind: 'mr-map', run: 'r', index: 0, partitions: 2, combine: code });
    expect(parseMapContext(map)).toEqual(map);
    expect(parseMapContext({ ...map, partitions: 0 })).toBeUndefined();
    expect(parseMapContext({ ...map, combine: 'x => x' })).toBeUndefined();
    const reduce = formatReduceContext('r', 1, [[origin, mapOutputKey(origin, 'r', 0, 1)]], undefined);
    expect(reduce.inputs[0]![1]).toBe(`${origin}|mr:r:0:1`);
    expect(parseReduceContext(reduce)).toEqual(reduce);
    expect(parseReduceContext({ ...reduce, inputs: [[origin]] })).toBeUndefined();
  });
});

describe('stream protocol (protocol.md §11.7)', () => {
  const pid = { node: origin, id: 3 };
  it('parses what a reader receives, and credit, channel and stage messages', () => {
    expect(streams.parseToReader(streams.formatOpen('s', 'w', pid))).toEqual(['zs:open', 's', 'w', pid]);
    expect(streams.parseToReader(streams.formatData('s', 'w', [1, 2]))).toEqual(['zs:data', 's', 'w', [1, 2]]);
    expect(streams.parseToReader(streams.formatEnd('s', 'w'))).toEqual(['zs:end', 's', 'w']);
    expect(streams.parseToReader(streams.formatFail('s', 'w', { name: 'E', message: 'm' }))).toEqual(['zs:error', 's', 'w', { name: 'E', message: 'm' }]);
    expect(streams.parseToReader(['zs:open', 's', 'w', 'not a pid'])).toBeUndefined();
    expect(streams.parseToReader(['zs:data', 's', 'w', 'not items'])).toBeUndefined();
    expect(streams.parseToReader(['zs:credit', 's', 'w', 1])).toBeUndefined();
    expect(streams.isForStream(streams.formatEnd('s', 'w'), 's')).toBe(true);
    expect(streams.isForStream(streams.formatEnd('t', 'w'), 's')).toBe(false);
    expect(streams.isCredit(streams.formatCredit('s', 'w', 4), 's', 'w')).toBe(true);
    expect(streams.isCredit(streams.formatCredit('s', 'w', -4), 's', 'w')).toBe(false);
    expect(streams.parseChannelRequest(streams.formatSubscribe(pid))).toEqual(['subscribe', pid]);
    expect(streams.parseChannelRequest(['subscribe', 'x'])).toBeUndefined();
    expect(streams.parsePublish(streams.formatPublish('m'))).toEqual(['publish', 'm']);
    const spec = { fn: code, stream: 's', writers: 1, window: 8, downstream: [{ pid, stream: 't' }] };
    const request = streams.formatStageSpawn(spec);
    expect(streams.isStageSpawnRequest(request)).toBe(true);
    expect(streams.parseStageSpawn(request)).toEqual(spec);
    expect(streams.parseStageSpawn(['stage:spawn', { ...spec, downstream: [{ pid: 1, stream: 't' }] }])).toBeUndefined();
  });
});
