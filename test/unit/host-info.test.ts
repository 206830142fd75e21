import { once } from 'node:events';
import { mkdtemp, mkdir, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pack, unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../lib/common/errors.js';
import { HostInfoMonitor, readHostInfo, type HostInfo } from '../../lib/cluster/host-info.js';

describe('readHostInfo', () => {
  it('returns plausible values for this machine', async () => {
    const info = await readHostInfo();
    expect(info.hostname).not.toBe('');
    expect(info.platform).toBe(process.platform);
    expect(info.cpus).toBeGreaterThanOrEqual(1);
    expect(info.loadAverage1m).toBeGreaterThanOrEqual(0);
    expect(info.cpuPercent).toBeGreaterThanOrEqual(0);
    expect(info.cpuPercent).toBeLessThanOrEqual(100);
    expect(info.memTotalBytes).toBeGreaterThan(0);
    expect(info.memAvailableBytes).toBeGreaterThanOrEqual(0);
    expect(info.memAvailableBytes).toBeLessThanOrEqual(info.memTotalBytes);
    expect(info.diskPath).toBe(process.cwd());
    expect(info.diskTotalBytes).toBeGreaterThan(0);
    expect(info.diskFreeBytes).toBeGreaterThanOrEqual(0);
    expect(info.diskFreeBytes).toBeLessThanOrEqual(info.diskTotalBytes);
    expect(Math.abs(Date.now() - info.sampledAt)).toBeLessThan(1000);
  });

  it('survives a msgpack round trip unchanged', async () => {
    const info = await readHostInfo({ cpuWindowMs: 0 });
    expect(unpack(pack(info))).toEqual(info);
  });

  it('reports the filesystem of the given diskPath, resolved to an absolute path', async () => {
    const info = await readHostInfo({ diskPath: tmpdir(), cpuWindowMs: 0 });
    expect(info.diskPath).toBe(tmpdir());
    expect(info.diskTotalBytes).toBeGreaterThan(0);
  });

  it('rejects with InvalidArgumentError when diskPath does not exist', async () => {
    const missing = join(tmpdir(), `zerocos-missing-${process.pid}-${Date.now()}`);
    await expect(readHostInfo({ diskPath: missing, cpuWindowMs: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('HostInfoMonitor', () => {
  it('rejects a non-positive intervalMs', () => {
    expect(() => new HostInfoMonitor({ intervalMs: 0 })).toThrow(InvalidArgumentError);
  });

  it('samples on start, refreshes every interval, and stops updating after stop()', async () => {
    const intervalMs = 50;
    const monitor = new HostInfoMonitor({ intervalMs });
    const updates: HostInfo[] = [];
    monitor.on('update', (info) => updates.push(info));
    try {
      const first = await monitor.start();
      expect(monitor.current).toBe(first);
      expect(updates).toEqual([first]);

      const [second] = (await once(monitor, 'update')) as [HostInfo];
      const [third] = (await once(monitor, 'update')) as [HostInfo];
      expect(second.sampledAt).toBeGreaterThan(first.sampledAt);
      expect(third.sampledAt).toBeGreaterThan(second.sampledAt);
      expect(monitor.current).toBe(third);
    } finally {
      monitor.stop();
    }
    monitor.stop(); // idempotent

    const count = updates.length;
    // The one bounded wait: it asserts that nothing arrives, which no event can signal.
    await sleep(3 * intervalMs);
    expect(updates.length).toBe(count);
  });

  it('emits sampleError, keeps the last good sample and carries on when a sample fails', async () => {
    const diskPath = await mkdtemp(join(tmpdir(), 'zerocos-host-info-'));
    const monitor = new HostInfoMonitor({ intervalMs: 20, diskPath });
    try {
      const good = await monitor.start();
      await rmdir(diskPath);
      const [error] = await once(monitor, 'sampleError');
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(monitor.current).toBe(good);

      await mkdir(diskPath);
      const [next] = (await once(monitor, 'update')) as [HostInfo];
      expect(next.sampledAt).toBeGreaterThan(good.sampledAt);
    } finally {
      monitor.stop();
      await rmdir(diskPath).catch(() => {});
    }
  });

  it('returns the same first sample to concurrent start() calls', async () => {
    const monitor = new HostInfoMonitor({ intervalMs: 1000 });
    try {
      const [a, b] = await Promise.all([monitor.start(), monitor.start()]);
      expect(a).toBe(b);
    } finally {
      monitor.stop();
    }
  });
});
