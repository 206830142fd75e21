import { describe, expect, it } from 'vitest';
import { guidedChunks } from '../../lib/mapreduce/chunk-plan.js';

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

describe('guidedChunks (files per map task when no chunkSize is given)', () => {
  it('cuts large tasks first and single files last, covering every file once', () => {
    expect(guidedChunks(40, 2)).toEqual([10, 8, 6, 4, 3, 3, 2, 1, 1, 1, 1]);
    expect(guidedChunks(8, 2)).toEqual([2, 2, 1, 1, 1, 1]);
    for (const [total, workers] of [[1, 1], [7, 3], [100, 4], [1000, 2], [5, 16]] as const) {
      const sizes = guidedChunks(total, workers);
      expect(sum(sizes)).toBe(total);
      expect(sizes.every((size, i) => size >= 1 && (i === 0 || size <= sizes[i - 1]!))).toBe(true);
      expect(sizes.at(-1)).toBe(1);
    }
  });

  it('gives one file a task when there are no more files than twice the workers, and nothing for no files', () => {
    expect(guidedChunks(4, 2)).toEqual([1, 1, 1, 1]);
    expect(guidedChunks(3, 8)).toEqual([1, 1, 1]);
    expect(guidedChunks(0, 2)).toEqual([]);
    expect(guidedChunks(3, 0)).toEqual([2, 1]);
  });
});
