import { afterEach, describe, expect, it } from 'vitest';
import { Node } from '../../lib/index.js';
import { JOB_STORE_PROCESS, OBJECTS_PROCESS } from '../../lib/common/service-names.js';
import { JobStore } from '../../lib/jobs/job-store.js';
import type { JobRecord } from '../../lib/jobs/job-protocol.js';
import { ObjectTable } from '../../lib/task/object-table.js';
import { eventually } from '../support/eventually.js';

/** Issue 16 item 9: only the owner may free or forget; a job store's records are bounded per sender. */
describe('owner-only requests and per-sender store bounds', () => {
  const nodes: Node[] = [];
  const start = async (name: string) => {
    const node = await Node.start({ name });
    nodes.push(node);
    return node;
  };
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((node) => node.stop()));
  });

  it('frees a held value only for the owner its key names: 10,000 forged frees erase nothing', async () => {
    const holder = await start('holder');
    const owner = await start('owner');
    const mallory = await start('mallory');
    const table = new ObjectTable(holder);
    const keys = Array.from({ length: 10_000 }, (_, i) => `${owner.id}|${i + 1}`);
    for (const key of keys) table.hold(key, `value of ${key}`);
    const objects = { name: OBJECTS_PROCESS, node: holder.id };
    mallory.send(objects, ['free', keys]);
    // A call on the same ordered path: the forged free has been handled when it answers.
    expect(await mallory.call(objects, ['fetch', keys[0]])).toBe(`value of ${keys[0]}`);
    // Before: all 10,000 values were gone. Now none, and each refused key is counted.
    expect(table.heldCount).toBe(10_000);
    expect(table.freesRefused).toBe(10_000);
    owner.send(objects, ['free', keys]);
    await eventually(() => expect(table.heldCount).toBe(0));
    expect(table.freesRefused).toBe(10_000);
  });

  const record = (cluster: string, job: number, owner: string): JobRecord => ({
    cluster,
    job,
    args: [job],
    owner,
    outcome: { result: job, stdout: '', stderr: '', startTime: 0, endTime: 1, host: 'h', worker: 'w' },
  });

  it("refuses forget from anyone but the cluster's owner, and a record naming another owner", async () => {
    const daemon = await start('daemon');
    const worker = await start('worker');
    const client = await start('client');
    const mallory = await start('mallory');
    const store = new JobStore(daemon);
    const jobstore = { name: JOB_STORE_PROCESS, node: daemon.id };
    worker.send(jobstore, ['record', [record('c1', 1, client.id), record('c1', 2, client.id)]]);
    await eventually(() => expect(store.recordsOf('c1')).toHaveLength(2));
    mallory.send(jobstore, ['forget', 'c1']);
    mallory.send(jobstore, ['record', [record('c1', 3, mallory.id)]]);
    // recover only reads, and is answered to any member (a new client after the owner died, `zerocos jobs`).
    expect(await mallory.call(jobstore, ['recover', 'c1'])).toHaveLength(2);
    // Before: mallory's forget erased the cluster. Now it is kept, and both requests are counted.
    expect(store.recordsOf('c1')).toHaveLength(2);
    expect(store.refused).toEqual({ records: 1, forgets: 1 });
    client.send(jobstore, ['forget', 'c1']);
    await eventually(() => expect(store.recordsOf('c1')).toHaveLength(0));
  });

  it('keeps at most 100,000 records from one sender: a flood of 150,000 leaves room for the others', async () => {
    const daemon = await start('daemon');
    const worker = await start('worker');
    const mallory = await start('mallory');
    const store = new JobStore(daemon);
    const jobstore = { name: JOB_STORE_PROCESS, node: daemon.id };
    // Connected first, and a round trip every 10 batches: on a loaded machine, encoding the whole
    // flood in one turn would hold the event loop past the connect timeout.
    await mallory.call(jobstore, ['clusters'], { timeoutMs: 30_000 });
    for (let batch = 0; batch < 150; batch++) {
      mallory.send(jobstore, ['record', Array.from({ length: 1000 }, (_, i) => record(`flood-${batch}`, i, mallory.id))]);
      if (batch % 10 === 9) await mallory.call(jobstore, ['clusters'], { timeoutMs: 30_000 });
    }
    // Before: 150,000 records in 150 clusters (only each cluster had a bound). Now 100,000.
    expect(store.size).toBe(100_000);
    expect(store.refused.records).toBe(50_000);
    worker.send(jobstore, ['record', [record('honest', 1, worker.id)]]);
    await eventually(() => expect(store.recordsOf('honest')).toHaveLength(1));
    // Forgetting gives the sender its room back.
    for (let batch = 0; batch < 100; batch++) mallory.send(jobstore, ['forget', `flood-${batch}`]);
    await mallory.call(jobstore, ['clusters']);
    expect(store.size).toBe(1);
  }, 60_000);
});
