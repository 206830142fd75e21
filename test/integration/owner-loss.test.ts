import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { remote, type Session } from '../../lib/index.js';
import { startReadyChild } from '../support/child.js';
import { nextLine } from '../support/eventually.js';
import { startSession, stopSession } from '../support/session.js';

const CLIENT = fileURLToPath(new URL('../../dist/test/fixtures/queue-client.js', import.meta.url));

let session: Session;
let scratch: string;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'zerocos-owner-loss-'));
  session = await startSession({ local: { daemons: 1, cpus: 1 } });
});

afterAll(async () => {
  await stopSession(session);
  rmSync(scratch, { recursive: true, force: true });
});

describe('a worker whose owner is lost', () => {
  it('drops the jobs that owner queued and that had not started; the one running finishes; the worker serves others', async () => {
    const client = await startReadyChild<{ cluster: string }>(CLIENT, [JSON.stringify(session.local!.peers()), scratch, '6'], 15_000);
    try {
      const { queued } = await nextLine<{ running: number; queued: number }>(client.lines, (line) => 'running' in line, 15_000);
      expect(queued).toBe(6); // all six were sent to the one worker: one running, five queued there
      process.kill(client.pid, 'SIGKILL');
      expect(await client.exited).toBe('SIGKILL');
    } finally {
      await client.stop();
    }
    // The worker runs in arrival order: once a task sent now has run, whatever of the dead
    // client's it kept queued would have started before it.
    const probe = remote((x: number) => x + 1);
    expect(await session.runtime.get(probe.remote(41), { timeoutMs: 15_000 })).toBe(42);
    const runs = readFileSync(join(scratch, 'runs'), 'utf8').trim().split('\n');
    expect(runs).toEqual(['0']);
  });
});
