import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonReady } from '../support/daemon.js';
import { DAEMON, NO_NETNS, allSeeEachOther } from './support/daemons.js';
import { NetnsLab } from './support/netns.js';

const README = fileURLToPath(new URL('../../README.md', import.meta.url));
/** Where the README's client is written: inside the package, so its `import ... from 'zerocos'` resolves to this build. */
const CLIENT_DIR = fileURLToPath(new URL('.', import.meta.url)).replace('/test/multihost', '/dist/test/multihost');

/** The README's "Running on many hosts" section: its first sh block and its first ts block. */
function quickStart(): { sh: string; ts: string } {
  const text = readFileSync(README, 'utf8');
  const start = text.indexOf('\n## Running on many hosts');
  if (start < 0) throw new Error('README.md has no "## Running on many hosts" section');
  const section = text.slice(start, text.indexOf('\n## ', start + 1));
  const block = (lang: string) => {
    const match = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(section);
    if (!match) throw new Error(`the section has no ${lang} block`);
    return match[1]!;
  };
  return { sh: block('sh'), ts: block('ts') };
}

// The README's quick start, as written, on 3 hosts and a client host: 10.0.0.N is lab host N-1.
describe.skipIf(NO_NETNS)("the README's multi-host quick start, run as written", { timeout: 90_000 }, () => {
  let lab: NetnsLab;
  let home: string;
  let clientFile: string;
  // A fresh HOME: the first daemon makes ~/.zerocos/secret, and every "host" shares it (the README's scp).
  const env = () => {
    const { ZEROCOS_SECRET: _unused, ...rest } = process.env;
    return { ...rest, HOME: home };
  };
  const addresses = (text: string) => text.replace(/10\.0\.0\.(\d)/g, (_, n: string) => lab.hosts[Number(n) - 1]!.address);

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'zerocos-mh-home-'));
    clientFile = join(CLIENT_DIR, `readme-client-${process.pid}.mjs`);
    lab = await NetnsLab.create({ hosts: 4 });
  });
  afterAll(async () => {
    await lab?.destroy();
    rmSync(home, { recursive: true, force: true });
    rmSync(clientFile, { force: true });
  });

  it('runs its daemons on three hosts and its client on a fourth, which prints what the README says', async () => {
    const { sh, ts: client } = quickStart();
    const commands = sh
      .split('\n')
      .map((line) => line.replace(/#.*/, '').trim())
      .filter((line) => line.startsWith('node-daemon'));
    // "node-daemon --host 10.0.0.1" (host 2 and 3 use their own address), and the seeds-only variant.
    const [plain, seeded] = commands;
    expect(plain).toBe('node-daemon --host 10.0.0.1');
    expect(seeded).toMatch(/^node-daemon --host 10\.0\.0\.3 .*--peers 10\.0\.0\.1:9740/);
    const argv = (command: string) => addresses(command).split(/\s+/).slice(1);
    const start = (host: number, command: string) => lab.startNode<DaemonReady>(lab.hosts[host]!, DAEMON, argv(command), 30_000, env());

    // Host 1 first: it makes the secret that the README copies to the others.
    const daemons = [await start(0, plain!)];
    daemons.push(await start(1, plain!.replace('10.0.0.1', '10.0.0.2')), await start(2, seeded!));
    await allSeeEachOther(daemons);

    const expected = /console\.log\(.*\);\s*\/\/\s*(.+)$/m.exec(client)?.[1]?.trim();
    expect(expected).toBe('[ 1, 4, 9 ]');
    writeFileSync(clientFile, ts.transpileModule(addresses(client), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText);
    const { stdout, stderr } = await lab.exec(lab.hosts[3]!, [process.execPath, clientFile], { timeoutMs: 60_000, env: env() });
    expect(stderr).toBe('');
    expect(stdout.trim()).toBe(expected);
  });
});
