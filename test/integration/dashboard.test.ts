import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, describe, expect, it } from 'vitest';
import { JobCluster, defaultSecretPath, loadOrCreateSecret } from '../../lib/internal.js';
import { startReadyChild, type ReadyChild } from '../support/child.js';
import { allWorkersReady, daemonsWithOwnHome, type DaemonReady } from '../support/daemon.js';
import { eventually, nextLine } from '../support/eventually.js';
import { eventuallyAsync, isAlive } from '../support/session.js';

const DAEMON = fileURLToPath(new URL('../../dist/daemons/node-daemon.js', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
/** Exactly these: no GPU, no network of its own (no QUIC, no component or sync fetches), no first-run UI. */
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** What the page waits get: a bound for a hung page on a loaded machine, not a pace. */
const PAGE_TIMEOUT_MS = 45_000;

/** The page's DOM as the functions run in the browser use it (this program compiles without the DOM library). */
interface PageElement {
  textContent: string | null;
  getAttribute(name: string): string | null;
}
declare const document: { querySelectorAll(selector: string): ArrayLike<PageElement> & Iterable<PageElement> };

type DashboardDaemon = ReadyChild<DaemonReady & { dashboard?: string }>;

const browserMissing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium; .ci/run does it)`;
if (browserMissing) console.warn(`dashboard browser test skipped: ${browserMissing}`);

const own = daemonsWithOwnHome<DaemonReady & { dashboard?: string }>('zerocos-dashboard-');

async function startDaemon(name: string, extra: string[]): Promise<DashboardDaemon> {
  const daemon = await startReadyChild<DaemonReady & { dashboard?: string }>(
    DAEMON,
    ['--port', '0', '--name', name, '--log-level', 'silent', '--discovery', 'off', ...extra],
    30_000,
    own.env,
  );
  own.started.push(daemon);
  await allWorkersReady(daemon);
  return daemon;
}

const seedOf = (daemon: DashboardDaemon) => daemon.ready.endpoint.replace('tcp://', '');

/** How many elements match `selector` on the page now. */
const count = (page: Page, selector: string) => page.$$eval(selector, (elements) => elements.length);

describe.skipIf(browserMissing !== undefined)('node-daemon --dashboard in headless Chromium', () => {
  let browser: Browser | undefined;
  let profile: string | undefined;

  afterAll(async () => {
    const pid = browser?.process()?.pid;
    await Promise.race([browser?.close(), new Promise((resolve) => setTimeout(resolve, 5000))]).catch(() => undefined);
    if (pid !== undefined && isAlive(pid)) process.kill(pid, 'SIGKILL');
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('shows the daemons, their workers and a running JobCluster\'s jobs, and updates them as the jobs end', async () => {
    const alpha = await startDaemon('alpha', ['--cpus', '2', '--dashboard', '127.0.0.1:0']);
    const beta = await startDaemon('beta', ['--cpus', '1', '--peers', seedOf(alpha)]);
    await nextLine(alpha.lines, (line) => line.event === 'peer:up' && line.node === beta.ready.node, 15_000);
    const url = alpha.ready.dashboard!;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);

    profile = mkdtempSync(join(tmpdir(), 'zerocos-chromium-'));
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, ignoreDefaultArgs: true, args: [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, 'about:blank'] });
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 1000 });
    page.setDefaultTimeout(PAGE_TIMEOUT_MS);
    await page.goto(url);

    // Both daemons and all three workers, ready.
    await page.waitForSelector('#nodes tr[data-name="alpha"]');
    await page.waitForSelector('#nodes tr[data-name="beta"]');
    await page.waitForFunction(() => document.querySelectorAll('#workers tr[data-state="ready"]').length === 3);
    expect(await page.$eval('#connection', (element) => element.getAttribute('data-state'))).toBe('live');
    // beta joined after alpha's dashboard started: its peer:up is in the event list.
    await page.waitForFunction(() => [...document.querySelectorAll('#events li[data-kind="peer:up"]')].some((li) => li.textContent?.includes('beta')));

    const work = mkdtempSync(join(own.home, 'jobs-'));
    const cluster = await JobCluster.create<[number, string], number>(
      async (i: number, dir: string) => {
        const fs = globalThis.process.getBuiltinModule('node:fs');
        // Runs until the test lets it end: the page must see it running first.
        while (!fs.existsSync(`${dir}/go`)) await new Promise((resolve) => setTimeout(resolve, 20));
        console.log(`job ${i} says hi`);
        if (i === 2) throw new Error(`job ${i} failed on purpose`);
        return i * 10;
      },
      { peers: [seedOf(alpha)], secret: loadOrCreateSecret(defaultSecretPath(own.home)) },
    );
    try {
      const jobs = [0, 1, 2].map((i) => cluster.submit(i, work));
      const id = cluster.id;
      // One job per worker: all three running at once, on both daemons.
      await page.waitForFunction((id) => document.querySelectorAll(`#jobs tr[data-job^="${id}/"][data-status="running"]`).length === 3, {}, id);
      await page.waitForFunction((id) => [...document.querySelectorAll('#workers tr')].filter((row) => row.textContent?.includes(`job ${id}`)).length === 3, {}, id);
      const updatesWhileRunning = Number(await page.$eval('#updated', (element) => element.getAttribute('data-count')));

      writeFileSync(join(work, 'go'), '');
      await Promise.all(jobs.map((job) => job.done()));
      expect(jobs.map((job) => job.status)).toEqual(['finished', 'finished', 'terminated']);
      // The same rows change state: two finished with their output, one terminated with its exception.
      await page.waitForFunction((id) => document.querySelectorAll(`#jobs tr[data-job^="${id}/"][data-status="finished"]`).length === 2, {}, id);
      await page.waitForFunction((id) => document.querySelectorAll(`#jobs tr[data-job^="${id}/"][data-status="terminated"]`).length === 1, {}, id);
      expect(await count(page, `#jobs tr[data-job^="${id}/"][data-status="running"]`)).toBe(0);
      const terminated = await page.$eval(`#jobs tr[data-job^="${id}/"][data-status="terminated"]`, (row) => row.textContent ?? '');
      expect(terminated).toContain('job 2 failed on purpose');
      const outputs = await page.$$eval(`#jobs tr[data-job^="${id}/"] pre`, (pres) => pres.map((pre) => pre.textContent ?? ''));
      for (const i of [0, 1, 2]) expect(outputs.some((text) => text.includes(`job ${i} says hi`))).toBe(true);
      // The workers' counters moved on, and the page kept receiving snapshots.
      await page.waitForFunction(() => [...document.querySelectorAll('#workers tr')].reduce((n, row) => n + Number(row.getAttribute('data-done') || 0), 0) >= 2);
      expect(Number(await page.$eval('#updated', (element) => element.getAttribute('data-count')))).toBeGreaterThan(updatesWhileRunning);
      // The charts have points: one load series per daemon.
      await page.waitForFunction(() => document.querySelectorAll('#chart-load .u-legend .u-series').length >= 3);

      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
      expect(readFileSync(join(ARTIFACTS, 'dashboard.png')).subarray(1, 4).toString()).toBe('PNG');
    } finally {
      await cluster.close({ terminate: true, timeoutMs: 30_000 });
    }

    // The dashboard's port serves the metrics too, with the heartbeat round trip to beta.
    const families = await eventuallyAsync(async () => {
      const parsed = parsePrometheusTextFormat(await (await fetch(`${url}metrics`)).text());
      const rtt = parsed.find((family) => family.name === 'zerocos_heartbeat_rtt_seconds');
      const sample = rtt?.metrics.find((metric) => metric.labels?.['peer']?.startsWith('beta@'));
      if (!sample || !(Number(sample.value) > 0)) throw new Error('no heartbeat round trip to beta yet');
      return parsed;
    });
    expect(families.find((family) => family.name === 'zerocos_mailbox_depth_high_water')?.type).toBe('GAUGE');
  });
});

describe('node-daemon --dashboard access', () => {
  it('asks for the token from the token file, and logs JSON lines to --log-file', async () => {
    const dir = mkdtempSync(join(own.home, 'token-'));
    const token = 'a-dashboard-token-of-some-length';
    writeFileSync(join(dir, 'token'), `${token}\n`);
    const daemon = await startDaemon('gamma', ['--cpus', '0', '--dashboard', '127.0.0.1:0', '--dashboard-token-file', join(dir, 'token'), '--log-level', 'info', '--log-file', join(dir, 'daemon.log')]);
    const url = daemon.ready.dashboard!;
    for (const path of ['', 'events', 'api/snapshot', 'metrics']) expect((await fetch(`${url}${path}`)).status, path).toBe(403);
    expect((await fetch(`${url}?token=wrong-token-of-some-length`)).status).toBe(403);

    const page = await fetch(`${url}?token=${token}`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<script src="app.js">');
    const cookie = page.headers.get('set-cookie')!.split(';')[0]!;
    expect((await fetch(`${url}app.js`, { headers: { cookie } })).status).toBe(200);
    const snapshot = (await (await fetch(`${url}api/snapshot`, { headers: { authorization: `Bearer ${token}` } })).json()) as { daemons: { name: string }[] };
    expect(snapshot.daemons.map((d) => d.name)).toEqual(['gamma']);

    // The stream: the history first, then snapshots.
    const abort = new AbortController();
    const events = await fetch(`${url}events`, { headers: { cookie }, signal: abort.signal });
    expect(events.headers.get('content-type')).toBe('text/event-stream');
    const reader = events.body!.getReader();
    let text = '';
    while (!text.includes('event: snapshot')) text += new TextDecoder().decode((await reader.read()).value);
    abort.abort();
    expect(text.indexOf('event: history')).toBeLessThan(text.indexOf('event: snapshot'));

    const log = await eventually(() => {
      const lines = readFileSync(join(dir, 'daemon.log'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { msg: string; level: number; node?: string });
      const ready = lines.find((line) => line.msg === 'ready');
      if (!ready) throw new Error('no ready line in the log yet');
      return ready;
    });
    expect(log).toMatchObject({ level: 30, node: daemon.ready.node });
  });

  it('refuses to serve the dashboard off loopback without a token', async () => {
    const out = (() => {
      try {
        return execFileSync(process.execPath, [DAEMON, '--port', '0', '--cpus', '0', '--discovery', 'off', '--log-level', 'silent', '--dashboard', '0.0.0.0:0'], { env: own.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
      } catch (error) {
        return error as { status: number; stderr: string };
      }
    })();
    expect(out).toMatchObject({ status: 1 });
    expect((out as { stderr: string }).stderr).toContain('needs a token');
  });
});
