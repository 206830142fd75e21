import { once } from 'node:events';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { Node } from '../../lib/index.js';

describe('Node.drained', () => {
  let node: Node;
  afterEach(async () => {
    await node.stop();
  });

  it('waits for a batch whose send is still pending, not only for the queue', async () => {
    node = await Node.start({ name: 'a', connectTimeoutMs: 300 });
    // Nothing listens on port 1: the first batch leaves the queue but its send stays pending.
    const gone = { node: 'gone:000000000000@tcp://127.0.0.1:1', id: 1 };
    node.send(gone, 'waiting');
    let drained = false;
    void node.drained(gone).then(() => (drained = true));
    await nextTurn();
    expect(drained).toBe(false);
    // It resolves once the channel is given up (the message comes back as a dead letter).
    const [letter] = await once(node, 'deadLetter');
    expect(letter).toMatchObject({ reason: 'nodedown', message: 'waiting' });
    await nextTurn();
    expect(drained).toBe(true);
  });
});
