import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Node, CallMessage } from '../../lib/index.js';
import { ObjectTable } from '../../lib/task/object-table.js';
import { WorkerObjects } from '../../lib/task/worker-objects.js';

/** A call message whose answer is recorded. */
const recorded = () => {
  const answers: unknown[] = [];
  const message = new CallMessage(['run'], { node: 'caller:1@tcp://127.0.0.1:1', id: 1 }, { respond: (_ok, value) => (answers.push(value), true) });
  return { message, answers };
};

describe('WorkerObjects.answer (a run result: in the reply, or kept here for its owner)', () => {
  let node: Node;
  let table: ObjectTable;
  beforeAll(async () => {
    node = await Node.start({ name: 'holder' });
    table = new ObjectTable(node);
  });
  afterAll(async () => {
    await node.stop();
  });

  const large = Array.from({ length: 2_000 }, (_, i) => [`word${i}`, i]);

  it('keeps a result over the inline limit and answers [1]; a small one travels as [0, value]', () => {
    const objects = new WorkerObjects(table, 1024);
    const big = recorded();
    objects.answer(big.message, 'owner|1', large);
    expect(big.answers).toEqual([[1]]);
    expect(table.heldCount).toBe(1);
    const small = recorded();
    objects.answer(small.message, 'owner|2', [['a', 1]]);
    expect(small.answers).toEqual([[0, [['a', 1]]]]);
    expect(table.heldCount).toBe(1);
  });

  it('answers [0, value] whatever its size when asked to inline (a MapReduce reducer), keeping nothing', () => {
    const objects = new WorkerObjects(table, 1024);
    const before = table.heldCount;
    const { message, answers } = recorded();
    objects.answer(message, 'owner|3', large, true);
    expect(answers).toEqual([[0, large]]);
    expect(table.heldCount).toBe(before);
  });
});
