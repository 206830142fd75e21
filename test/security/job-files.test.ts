import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobCluster, Node, resolveSecret, type Session } from '../../lib/internal.js';
import { eventually } from '../support/eventually.js';
import { startSession, stopSession } from '../support/session.js';
import { JOB_CLUSTER_PREFIX } from '../../lib/common/service-names.js';

// Workers install the API as a global for shipped functions (they cannot import it).
declare const zerocos: typeof import('../../lib/index.js');

let session: Session;
let scratch: string;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'zerocos-sec-jobs-'));
  session = await startSession({ local: { daemons: 1, cpus: 1 } });
});

afterAll(async () => {
  await stopSession(session);
  rmSync(scratch, { recursive: true, force: true });
});

describe("a job's results", () => {
  it("take files and provisional results only from the job's own worker", async () => {
    const filesDir = join(scratch, 'files-back');
    const go = join(scratch, 'go');
    const cluster = await JobCluster.create<[string], string>(
      async function waitForGo(goFile: string) {
        const fs = globalThis.process.getBuiltinModule('node:fs');
        const os = globalThis.process.getBuiltinModule('node:os');
        const own = `${os.tmpdir()}/zerocos-sec-own-${globalThis.process.pid}.txt`;
        fs.writeFileSync(own, 'from the worker');
        await zerocos.jobs.sendFile(own);
        fs.rmSync(own);
        while (!fs.existsSync(goFile)) await new Promise((resolve) => setTimeout(resolve, 20));
        return 'done';
      },
      { filesDir },
    );
    // Another member of the cluster (it holds the secret), but not the job's worker.
    const secret = resolveSecret({});
    const mallory = await Node.start({ name: 'mallory', ...(secret !== undefined ? { secret } : {}) });
    try {
      const job = cluster.submit(go);
      await eventually(() => expect(job.status).toBe('running'), { timeoutMs: 10_000 });
      const owner = session.client.node.id;
      const target = { name: JOB_CLUSTER_PREFIX + cluster.id, node: owner };
      mallory.send(target, ['file', job.id, 'planted.txt', new TextEncoder().encode('not from the worker')]);
      mallory.send(target, ['provisional', job.id, 'forged']);
      // A round trip on the same ordered path: the forged messages are in the mailbox by now.
      expect(await mallory.lookup(JOB_CLUSTER_PREFIX + cluster.id, owner)).toBeDefined();
      writeFileSync(go, '');
      expect(await job.value()).toBe('done');
      expect(job.files).toHaveLength(1);
      expect(job.files[0]).toContain('zerocos-sec-own-');
      expect(job.provisional).toBeUndefined();
      expect(readdirSync(filesDir).some((name) => name.includes('planted'))).toBe(false);
      expect(existsSync(join(filesDir, `${job.id}-planted.txt`))).toBe(false);
    } finally {
      await mallory.stop();
      await cluster.close({ terminate: true, timeoutMs: 5000 });
    }
  });
});
