import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../lib/common/errors.js';
import { partitionOf } from '../../lib/common/partition.js';
import { FoldedPairs } from '../../lib/mapreduce/folded-pairs.js';
import { formatSharesRequest, isSharesRequest, parseSharesRequest } from '../../lib/mapreduce/mr-protocol.js';
import { shipFunction } from '../../lib/task/remote-function.js';

const add = (a: unknown, b: unknown) => (a as number) + (b as number);
const pairsOf = (folded: FoldedPairs) => {
  const out: [unknown, unknown][] = [];
  folded.forEach((key, value) => out.push([key, value]));
  return out;
};

describe('FoldedPairs (the folded map side and reducer merge of MapReduce)', () => {
  it('folds the values of each key, object keys by their JSON, giving the first object back', () => {
    const folded = new FoldedPairs(add);
    const key = { w: 'a' };
    folded.add('x', 1);
    folded.add(key, 2);
    folded.add('x', 3);
    folded.add({ w: 'a' }, 4);
    folded.add(7, 1);
    expect(folded.size).toBe(3);
    expect(pairsOf(folded)).toEqual([['x', 4], [{ w: 'a' }, 6], [7, 1]]);
    expect(pairsOf(folded)[1]![0]).toBe(key);
  });

  it('tells a new key from one whose folded value is undefined', () => {
    const calls: unknown[][] = [];
    const folded = new FoldedPairs((a, b) => (calls.push([a, b]), undefined));
    folded.add('k', undefined);
    folded.add('k', 5);
    expect(calls).toEqual([[undefined, 5]]);
  });

  it('splits into flat shares by partitionOf and merges them back', () => {
    const folded = new FoldedPairs(add);
    for (const word of ['a', 'b', 'c', 'a', 'd', 'e', 'b']) folded.add(word, 1);
    const shares = folded.split(3);
    shares.forEach((share, p) => {
      for (let i = 0; i < share.length; i += 2) expect(partitionOf(share[i], 3)).toBe(p);
    });
    const merged = new FoldedPairs(add);
    for (const share of [...shares, ...shares]) merged.addShare(share);
    expect(new Map(pairsOf(merged) as [string, number][])).toEqual(new Map([['a', 4], ['b', 4], ['c', 2], ['d', 2], ['e', 2]]));
  });

  it('refuses a share that is not a flat list of pairs', () => {
    const merged = new FoldedPairs(add);
    expect(() => merged.addShare([['a', [1]]] as unknown)).toThrow(InvalidArgumentError);
    expect(() => merged.addShare({})).toThrow(InvalidArgumentError);
  });
});

describe('mr-shares request (protocol.md §11.6)', () => {
  it('parses what it formats and refuses malformed ones', () => {
    const fold = shipFunction((a: number, b: number) => a + b);
    expect(parseSharesRequest(formatSharesRequest(['k1', 'k2'], fold))).toEqual({ keys: ['k1', 'k2'], fold });
    expect(parseSharesRequest(['mr-shares', ['k', 3], fold])).toBeUndefined();
    expect(parseSharesRequest(['mr-shares', ['k'], { source: 'x' }])).toBeUndefined();
    expect(parseSharesRequest(['mr-shares', ['k']])).toBeUndefined();
    expect(isSharesRequest(['mr-shares', 'junk'])).toBe(true);
    expect(isSharesRequest(['run', 1])).toBe(false);
  });
});
