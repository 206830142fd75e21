import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, nextLine } from '../support/eventually.js';
import { isAlive } from '../support/session.js';
import { NO_NETNS, clientResult, downEvent, hostPort, scratchDir, secretFile, startClient, startDaemons, workerPids, type HostDaemon } from './support/daemons.js';
import { NetnsLab } from './support/netns.js';

interface Progress {
  mapsDone: number;
  mapsTotal: number;
  reducesTotal: number;
  inputDone: boolean;
}

// Three daemon hosts (1 worker each) and a client host counting words; host 2's daemon is SIGKILLed mid-run.
describe.skipIf(NO_NETNS)('a daemon SIGKILLed while a client on another host runs a MapReduce', { timeout: 90_000 }, () => {
  let lab: NetnsLab;
  let scratch: ReturnType<typeof scratchDir>;
  let secret: string;
  let daemons: HostDaemon[];

  beforeAll(async () => {
    scratch = scratchDir();
    secret = secretFile(scratch.dir, 'multihost-kill-secret');
    lab = await NetnsLab.create({ hosts: 4 });
    daemons = await startDaemons(lab, secret, [1, 1, 1]);
  }, 60_000);
  afterAll(async () => {
    await lab?.destroy();
    scratch?.remove();
  });

  it('still gives the single-process word count, re-running what the lost host held', async () => {
    const victim = daemons[2]!;
    const victimWorkers = workerPids([victim]);
    const client = await startClient(lab, lab.hosts[3]!, 'mapreduce', daemons.map(hostPort), secret, ['3']);
    // Kill once two maps are done and the maps are still running: the victim's worker holds map outputs or a running map.
    const { progress } = await nextLine<{ progress: Progress }>(client.lines, (line) => line.progress?.mapsDone >= 2, 30_000);
    victim.child.kill('SIGKILL');
    expect(progress.reducesTotal).toBe(0);
    expect(client.lines.some((line: any) => line.result)).toBe(false);

    const result = await clientResult<{ equal: boolean; distinct: number; mapsRerun: number; retried: number }>(client, 60_000);
    expect(result.equal).toBe(true);
    expect(result.distinct).toBeGreaterThan(1000);
    // What the victim held was run again: maps running on it (task retries) or map outputs lost with it.
    expect(result.mapsRerun + result.retried).toBeGreaterThanOrEqual(1);
    expect(await victim.exited).toBe('SIGKILL');
    for (const survivor of daemons.slice(0, 2)) expect((await downEvent(survivor, victim.ready.node)).reason).toBe('disconnected');
    await eventually(() => expect(victimWorkers.filter(isAlive)).toEqual([]));
  });
});
