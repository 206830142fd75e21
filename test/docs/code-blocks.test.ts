/**
 * Every code block of README.md and the guides in docs/, checked as a reader would use it:
 * - TypeScript (and JavaScript) blocks are compiled together, in one TypeScript program with
 *   `strict`, importing `'zerocos'` as an application does: the files are written inside this
 *   package (under dist/), so the import resolves by the package's own name to its exports
 *   (dist/lib/index.d.ts, dist/lib/index.js). Blocks marked `<!-- run -->` then run as programs,
 *   each starting its own local cluster on 127.0.0.1; see markdown-blocks.ts for the markers.
 * - Shell blocks: every `npm run X` (in blocks and prose) names a script of package.json and
 *   every `npm run bench -- X` a benchmark; every flag given to `node-daemon`, `zerocos` and the
 *   examples exists in their `--help` or source; `--version` prints package.json's version.
 *   Shell lines that act on other hosts or install things are listed as not run, with why.
 *
 * Uses the compiled dist/ (as the other integration tests do): run `npx tsc -p .` first.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CodeBlock, isScript, isShell, readBlocks, where } from './markdown-blocks.js';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../..', import.meta.url));
const DAEMON = join(repo, 'dist/daemons/node-daemon.js');
const CLI = join(repo, 'dist/daemons/zerocos.js');
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string; scripts: Record<string, string> };

/** Bounds for a hung block, not a pace: a block starts a local cluster (1-3 s idle, 5-10 times that with both cores busy). */
const RUN_TIMEOUT_MS = 150_000;
/** One TypeScript program over every block and the package's declarations: seconds idle, a minute or more under load. */
const COMPILE_TIMEOUT_MS = 300_000;

const docFiles = ['README.md', ...readdirSync(join(repo, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)];
const blocks: CodeBlock[] = docFiles.flatMap((file) => readBlocks(join(repo, file), file));
const scripts = blocks.filter(isScript);
const shells = blocks.filter(isShell);

/** Where the blocks are written: inside the package, so `'zerocos'` resolves to this build by its own name. */
const work = join(repo, 'dist', `docs-blocks-${process.pid}`);
const sourceName = (block: CodeBlock) =>
  `${block.file.replace(/[^A-Za-z0-9]+/g, '-')}-${block.line}.${block.lang.startsWith('j') || block.lang === 'mjs' ? 'js' : 'ts'}`;
const outputOf = (block: CodeBlock) => join(work, 'out', sourceName(block).replace(/\.ts$/, '.js'));

/** Compile errors per block, as `docs/x.md:12 (block line 3): TS2322 ...`. */
let compileErrors: Map<CodeBlock, string[]>;

beforeAll(() => {
  mkdirSync(join(work, 'src'), { recursive: true });
  const offsets = new Map<string, { block: CodeBlock; offset: number }>();
  for (const block of scripts) {
    const context = block.marker?.kind === 'fragment' ? `${block.marker.context}\n` : '';
    const path = join(work, 'src', sourceName(block));
    // `export {}` makes every block a module of its own (top-level await, no shared globals).
    writeFileSync(path, `${context}${block.code}\nexport {};\n`);
    offsets.set(path, { block, offset: context ? context.split('\n').length - 1 : 0 });
  }
  const program = ts.createProgram([...offsets.keys()], {
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: ['node'],
    skipLibCheck: true,
    allowJs: true,
    rootDir: join(work, 'src'),
    outDir: join(work, 'out'),
  });
  compileErrors = new Map(scripts.map((block) => [block, []]));
  const diagnostics = [...ts.getPreEmitDiagnostics(program), ...program.emit().diagnostics];
  for (const diagnostic of diagnostics) {
    const text = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    const source = diagnostic.file && offsets.get(diagnostic.file.fileName);
    if (!source) throw new Error(`compiling the blocks: TS${diagnostic.code} ${text} (${diagnostic.file?.fileName ?? 'no file'})`);
    const { line } = diagnostic.file!.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
    const blockLine = line + 1 - source.offset;
    compileErrors.get(source.block)!.push(`${source.block.file}:${source.block.line + blockLine} (block line ${blockLine}): TS${diagnostic.code} ${text}`);
  }
}, COMPILE_TIMEOUT_MS);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('TypeScript blocks of the README and the guides', () => {
  it('finds blocks to check in every guide that has any', () => {
    expect(scripts.length).toBeGreaterThanOrEqual(8);
    expect(scripts.map((block) => block.file)).toContain('README.md');
  });

  it.each(scripts.map((block) => [where(block), block] as const))('%s is marked run, compile or fragment', (_, block) => {
    expect(block.badMarker, `unreadable marker <!-- ${block.badMarker} -->`).toBeUndefined();
    expect(block.marker, 'a TypeScript block needs <!-- run -->, <!-- compile: why not run --> or <!-- fragment: declarations --> above it').toBeDefined();
    if (block.marker?.kind === 'compile') console.log(`${where(block)}: compiled, not run: ${block.marker.reason}`);
    if (block.marker?.kind === 'fragment') console.log(`${where(block)}: a fragment, compiled after: ${block.marker.context}`);
  });

  it.each(scripts.map((block) => [where(block), block] as const))('%s compiles with tsc --strict against the package', (_, block) => {
    expect(compileErrors.get(block)).toEqual([]);
  });

  const runnable = scripts.filter((block) => block.marker?.kind === 'run');
  it.each(runnable.map((block) => [where(block), block] as const))(
    '%s runs to completion',
    async (_, block) => {
      expect(compileErrors.get(block), 'it does not compile (see above)').toEqual([]);
      const { stdout } = await run(process.execPath, [outputOf(block)], { cwd: work, timeout: RUN_TIMEOUT_MS }).catch(
        (error: Error & { stdout?: string; stderr?: string; killed?: boolean }) => {
          const why = error.killed ? `did not finish within ${RUN_TIMEOUT_MS} ms` : 'failed';
          throw new Error(`${where(block)} ${why}: ${error.message}\nstdout:\n${error.stdout}\nstderr:\n${error.stderr}`);
        },
      );
      const printed = stdout.split('\n').map((line) => line.trim());
      for (const line of block.marker?.kind === 'run' ? block.marker.expect : []) expect(printed, `stdout:\n${stdout}`).toContain(line);
    },
    RUN_TIMEOUT_MS + 10_000,
  );
});

/** Shell lines, comments and continuation joined, each with the block it is in. */
const shellLines = shells.flatMap((block) =>
  block.code
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.replace(/(^|\s)#.*$/, '').trim())
    .filter((line) => line !== '')
    .map((line) => ({ block, line })),
);

/** The `--flags` of a command line, after the command itself. */
const flagsOf = (line: string) => [...line.matchAll(/(?:^|\s)(--[a-z][a-z0-9-]*)/g)].map((match) => match[1]!);

async function helpOf(args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, args, { timeout: 60_000 });
  return stdout;
}

describe('shell blocks of the README and the guides', () => {
  it('every `npm run X` names a script of package.json, and every `npm run bench -- X` a benchmark', () => {
    const text = docFiles.map((file) => readFileSync(join(repo, file), 'utf8')).join('\n');
    const named = new Set([...text.matchAll(/npm run ([\w:-]+)/g)].map((match) => match[1]!));
    expect(named.size).toBeGreaterThan(0);
    for (const name of named) expect(Object.keys(pkg.scripts), `npm run ${name}`).toContain(name);
    const benches = readFileSync(join(repo, 'bench/run.ts'), 'utf8');
    for (const [, name] of text.matchAll(/npm run bench -- ([\w-]+)/g)) {
      expect(benches, `npm run bench -- ${name}: no such benchmark in bench/run.ts`).toMatch(new RegExp(`^\\s+'?${name}'?: run`, 'm'));
    }
  });

  it('node-daemon and zerocos print the package version for --version', async () => {
    expect((await helpOf([DAEMON, '--version'])).trim()).toBe(pkg.version);
    expect((await helpOf([CLI, '--version'])).trim()).toBe(pkg.version);
  });

  it("every flag given to node-daemon, in commands and in docs/cluster.md's flag table, is in its --help", async () => {
    const help = await helpOf([DAEMON, '--help']);
    const commands = shellLines.filter(({ line }) => /(^|\s)(npx )?(node-daemon|node dist\/daemons\/node-daemon\.js)(\s|$)/.test(line));
    expect(commands.length).toBeGreaterThan(0);
    const table = readFileSync(join(repo, 'docs/cluster.md'), 'utf8')
      .split('\n')
      .filter((row) => row.startsWith('| `--'))
      .map((row) => row.split(/(?<!\\)\|/)[1]!);
    expect(table.length).toBeGreaterThan(10);
    const shown = [
      ...commands.flatMap(({ block, line }) => flagsOf(line.slice(line.search(/node-daemon/))).map((flag) => ({ flag, at: where(block) }))),
      ...table.flatMap((cell) => flagsOf(cell.replace(/`/g, ' ')).map((flag) => ({ flag, at: 'docs/cluster.md flag table' }))),
    ];
    for (const { flag, at } of shown) expect(help, `${at}: node-daemon ${flag} is not in node-daemon --help`).toMatch(new RegExp(`\\s${flag}[\\s,]`));
    const documented = new Set(table.flatMap((cell) => flagsOf(cell.replace(/`/g, ' '))));
    const undocumented = flagsOf(help).filter((flag) => !documented.has(flag) && !['--help', '--version'].includes(flag));
    if (undocumented.length > 0) console.log(`node-daemon flags not in docs/cluster.md's table: ${[...new Set(undocumented)].join(', ')}`);
  });

  it('every zerocos command shown is a subcommand, and its flags are in that subcommand\'s --help', async () => {
    const commands = shellLines.filter(({ line }) => /(^|\s)(npx )?(zerocos|node dist\/daemons\/zerocos\.js)\s+\w/.test(line));
    expect(commands.length).toBeGreaterThan(0);
    const helps = new Map<string, string>();
    for (const { block, line } of commands) {
      const rest = line.slice(line.search(/zerocos(\.js)?\s/)).split(/\s+/).slice(1);
      const sub = rest[0]!;
      if (!helps.has(sub)) helps.set(sub, await helpOf([CLI, sub, '--help']).catch(() => ''));
      expect(helps.get(sub), `${where(block)}: zerocos ${sub} is not a subcommand`).toMatch(/^Usage: zerocos /);
      for (const flag of flagsOf(rest.join(' '))) expect(helps.get(sub), `${where(block)}: zerocos ${sub} ${flag}`).toMatch(new RegExp(`\\s${flag}[\\s,]`));
    }
  });

  it('every example run is a built example, and its flags are ones its source reads', () => {
    const commands = shellLines.filter(({ line }) => /node dist\/examples\//.test(line));
    expect(commands.length).toBeGreaterThan(0);
    for (const { block, line } of commands) {
      const [, name, rest] = /node dist\/examples\/([\w-]+)\/main\.js(.*)$/.exec(line) ?? [];
      expect(name, `${where(block)}: ${line}`).toBeDefined();
      const folder = join(repo, 'examples', name!);
      expect(existsSync(join(folder, 'main.ts')), `${where(block)}: examples/${name}/main.ts`).toBe(true);
      const source = readdirSync(folder)
        .filter((file) => file.endsWith('.ts'))
        .map((file) => readFileSync(join(folder, file), 'utf8'))
        .join('\n');
      for (const flag of flagsOf(rest!)) expect(source, `${where(block)}: examples/${name} does not know ${flag}`).toContain(flag);
    }
  });

  it('lists the shell lines it does not check, with why', () => {
    const checked = /(node-daemon|zerocos|node dist\/examples\/|npm run |npm test)/;
    const skipped = shellLines.filter(({ line }) => !checked.test(line));
    for (const { block, line } of skipped) {
      const why = /^(scp|ssh|git|curl)\b|^npm (install|ci|pack)|^cd\b/.test(line)
        ? 'acts on other hosts, the network or an install'
        : 'a program or a fragment of one, not a command of this package';
      console.log(`${where(block)}: not run (${why}): ${line.length > 100 ? `${line.slice(0, 100)}…` : line}`);
    }
    expect(relative(repo, work)).toMatch(/^dist\//);
  });
});

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');

describe('links of the README and the guides', () => {
  it('every relative link names a file of the repository, and every #anchor a heading in it', () => {
    const anchorsOf = (file: string) =>
      new Set(
        readFileSync(join(repo, file), 'utf8')
          .replace(/^```[\s\S]*?^```/gm, '')
          .split('\n')
          .filter((line) => /^#{1,6} /.test(line))
          .map((line) => slug(line.replace(/^#+ /, ''))),
      );
    let checked = 0;
    for (const file of docFiles) {
      const text = readFileSync(join(repo, file), 'utf8').replace(/^```[\s\S]*?^```/gm, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        const [path, anchor] = target!.split('#');
        const linked = path ? relative(repo, join(repo, dirname(file), path)) : file;
        expect(existsSync(join(repo, linked)), `${file}: link to ${target}`).toBe(true);
        if (anchor && linked.endsWith('.md')) expect([...anchorsOf(linked)], `${file}: link to ${target}`).toContain(anchor);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(10);
  });
});
