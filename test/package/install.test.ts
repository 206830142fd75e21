/**
 * The done-criterion of a newcomer's install: `npm pack` the package, install the tarball into a
 * scratch project, compile a strict TypeScript program that uses every layer against the
 * packed type declarations, make the install read-only, and run the program as an unprivileged
 * user (`nobody`, whose home does not exist), so shipped modules and program jobs must find a
 * writable cache of their own and still import the application's packages.
 *
 * Installs with `--prefer-offline`: the repository's own install has filled npm's cache. Uses the
 * compiled dist/ (as the other integration tests do): run `npx tsc -p .` first.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../..', import.meta.url));
const fixture = fileURLToPath(new URL('./app', import.meta.url));
const NOBODY = 65534;

let work: string;
let app: string;
let temp: string;
/** How the program is run: as `nobody` when this process is root and can switch users. */
let asUser: string[] = [];

// The bounds below are for a hung tool, not a pace: with both cores busy (load 20 on 2 cores),
// npm and tsc run 5-10 times slower than idle (tsc alone took over 60 s there).
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'zerocos-pack-'));
  chmodSync(work, 0o755);
  // Scripts off: `prepare` would compile again, and dist/ is what the other tests run too.
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', work], { cwd: repo, timeout: 120_000 });
  const tarball = join(work, stdout.trim().split('\n').pop()!);
  app = join(work, 'app');
  cpSync(fixture, app, { recursive: true });
  const typesNode = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies['@types/node']!;
  const manifest = readFileSync(join(app, 'package.json.template'), 'utf8').replace('@TARBALL@', tarball).replace('@TYPES_NODE@', typesNode);
  writeFileSync(join(app, 'package.json'), manifest);
  rmSync(join(app, 'package.json.template'));
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: app, timeout: 240_000 });
  await run(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], { cwd: app, timeout: 240_000 }).catch((error: { stdout?: string; killed?: boolean }) => {
    if (error.killed) throw new Error(`tsc did not finish within its bound: ${String(error)}`);
    throw new Error(`the consumer program does not compile:\n${error.stdout || String(error)}`);
  });
  // Read-only for everyone: what a root-owned install looks like to another user.
  execFileSync('chmod', ['-R', 'a-w,a+rX', app]);
  // The program's own temp directory (TMPDIR), so the cache's fallback there is this run's alone.
  temp = join(work, 'tmp');
  mkdirSync(temp);
  chmodSync(temp, 0o1777);
  if (process.getuid?.() === 0 && existsSync('/usr/bin/setpriv')) {
    asUser = ['/usr/bin/setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--'];
  } else {
    console.log(`install.test: running the program as uid ${process.getuid?.()} (not root, or no setpriv: cannot switch to nobody)`);
  }
}, 660_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the packed package, installed into a scratch project', () => {
  it('ships only the built library, the daemons, their sources, docs, README and LICENSE', () => {
    const stdout = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repo, encoding: 'utf8' });
    const files = (JSON.parse(stdout) as [{ files: { path: string }[] }])[0].files.map((f) => f.path);
    expect(files).toContain('dist/lib/index.js');
    expect(files).toContain('dist/lib/index.d.ts');
    expect(files).toContain('dist/daemons/node-daemon.js');
    expect(files).toContain('dist/daemons/worker.js');
    expect(files).toContain('dist/daemons/zerocos.js');
    expect(files).toContain('LICENSE');
    expect(files.filter((path) => !/^(dist\/lib|dist\/daemons|lib|daemons|docs)\/|^(README\.md|LICENSE|package\.json)$/.test(path))).toEqual([]);
  });

  it('runs a strict TypeScript program using every layer, read-only and as another user', async () => {
    // nobody's home does not exist: no ~/.cache and no ~/.zerocos/secret, so the secret comes from the environment.
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: asUser.length > 0 ? '/nonexistent' : (process.env.HOME ?? '/nonexistent'),
      ZEROCOS_SECRET: randomBytes(16).toString('hex'),
      TMPDIR: temp,
    };
    const [command, ...args] = [...asUser, process.execPath, join(app, 'dist', 'main.js')];
    const { stdout } = await run(command!, args, { cwd: app, env, timeout: 150_000 });
    const result = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(result).toMatchObject({
      tagged: 'HI! same-zerocos',
      count: 5,
      jobValue: 36,
      exitCode: 0,
      programOutput: 'PROGRAM!\n',
      cats: 2,
      piped: [11, 21, 31],
    });
    const squared = result.squared as { square: number; pid: number };
    expect(squared.square).toBe(49);
    // `process` in a shipped function is the worker's
    expect(squared.pid).not.toBe(result.clientPid);
    // with no home, the module cache fell back to a private folder in the temp directory
    if (asUser.length > 0) expect(statSync(join(temp, `zerocos-${NOBODY}`)).mode & 0o777).toBe(0o700);
  }, 180_000);
});
