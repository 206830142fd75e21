import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pack, unpack } from 'msgpackr';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../lib/common/errors.js';
import { ModuleCacheError } from '../../lib/task/module-cache.js';
import { isShippedModule, ModuleLoader, shipModule, type ShippedModule } from '../../lib/task/module-shipping.js';
import { HashMismatchError } from '../../lib/task/remote-function.js';

let dir: string;
let cacheDir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'zerocos-ship-'));
  cacheDir = mkdtempSync(join(tmpdir(), 'zerocos-cache-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(cacheDir, { recursive: true, force: true });
});

/** Writes `files` (relative path -> text) under the temp dir; returns the first one's absolute path. */
function writeFiles(files: Record<string, string>): string[] {
  return Object.entries(files).map(([path, text]) => {
    const absolute = join(dir, path);
    mkdirSync(join(absolute, '..'), { recursive: true });
    writeFileSync(absolute, text);
    return absolute;
  });
}

/** A main module with a dependency, in src/ with its helper in src/lib/ (a unique value per test, as Node caches modules by URL). */
function writeModuleWithHelper(): { main: string; helper: string } {
  const [main, helper] = writeFiles({
    'src/main.mjs': `import { twice } from './lib/helper.js';\nexport function compute(x) { return twice(x) + 1; }\nexport const notAFunction = 42;\n`,
    'src/lib/helper.js': `export function twice(x) { return x * 2; }\n`,
  });
  return { main: main!, helper: helper! };
}

/** A fetchFile serving `contents`, counting its calls. */
function fetcher(contents: Map<string, Uint8Array>): { fetchFile: (hash: string) => Promise<Uint8Array>; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    fetchFile: async (hash) => {
      calls.push(hash);
      const content = contents.get(hash);
      if (!content) throw new Error(`no content ${hash}`);
      return content;
    },
  };
}

function sha256(content: string | Uint8Array): string {
  return createHash('sha256').update(content).digest('hex');
}

/** A ShippedModule with `files` and a correct bundle hash (so that the paths are what is tested). */
function forge(files: { path: string; hash: string; size: number }[], main = files[0]!.path): ShippedModule {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : 1));
  const hash = createHash('sha256');
  for (const file of sorted) hash.update(`${file.path}\0${file.hash}\n`);
  return { kind: 'module', name: 'f', main, files: sorted, hash: hash.digest('hex') };
}

describe('shipModule', () => {
  it('ships the main file and its dependencies relative to their deepest common directory', () => {
    const { main, helper } = writeModuleWithHelper();
    const { shipped, contents } = shipModule(main, 'compute', { depends: [pathToFileURL(helper)] });
    expect(shipped.kind).toBe('module');
    expect(shipped.name).toBe('compute');
    expect(shipped.main).toBe('main.mjs');
    expect(shipped.files.map((f) => f.path)).toEqual(['lib/helper.js', 'main.mjs']);
    for (const file of shipped.files) {
      const content = readFileSync(join(dir, 'src', file.path));
      expect(file).toEqual({ path: file.path, hash: sha256(content), size: content.byteLength });
      expect(Buffer.from(contents.get(file.hash)!)).toEqual(content);
    }
    expect(isShippedModule(unpack(pack(shipped)))).toBe(true);
    expect(unpack(pack(shipped))).toEqual(shipped);
  });

  it('accepts a file: URL string like import.meta.url, and gives the same bundle id for the same files', () => {
    const { main, helper } = writeModuleWithHelper();
    const a = shipModule(pathToFileURL(main).href, 'compute', { depends: [helper, main] }).shipped;
    const b = shipModule(main, 'other', { depends: [helper] }).shipped;
    expect(a.files).toHaveLength(2);
    expect(a.hash).toBe(b.hash);
    expect(shipModule(main, 'compute').shipped.hash).not.toBe(a.hash);
  });

  it('roots the bundle above the main module when a dependency lives higher up', () => {
    const [main, shared] = writeFiles({ 'app/jobs/main.mjs': 'export const f = () => 1;\n', 'app/shared.mjs': 'export {};\n' });
    const { shipped } = shipModule(main!, 'f', { depends: [shared!] });
    expect(shipped.main).toBe('jobs/main.mjs');
    expect(shipped.files.map((f) => f.path)).toEqual(['jobs/main.mjs', 'shared.mjs']);
  });

  it('rejects a missing file naming it, a directory, and an empty export name', () => {
    const { main } = writeModuleWithHelper();
    const missing = join(dir, 'nope.mjs');
    expect(() => shipModule(missing, 'f')).toThrow(InvalidArgumentError);
    expect(() => shipModule(main, 'f', { depends: [missing] })).toThrow(missing);
    expect(() => shipModule(dir, 'f')).toThrow(/not a file/);
    expect(() => shipModule(main, '')).toThrow(InvalidArgumentError);
  });
});

describe('ModuleLoader', () => {
  it('materialises the bundle in its cache directory, imports it and returns the export', async () => {
    const { main, helper } = writeModuleWithHelper();
    const { shipped, contents } = shipModule(main, 'compute', { depends: [helper] });
    const { fetchFile, calls } = fetcher(contents);
    const loader = new ModuleLoader({ cacheDir });
    const compute = await loader.load(unpack(pack(shipped)) as ShippedModule, fetchFile);
    expect(compute(20)).toBe(41);
    expect(calls.sort()).toEqual(shipped.files.map((f) => f.hash).sort());
    expect(readFileSync(join(loader.modulesDir, shipped.hash, 'lib', 'helper.js'), 'utf8')).toBe(readFileSync(helper, 'utf8'));
  });

  it('fetches nothing again: the same function from memory, and from disk in a new loader', async () => {
    const { main, helper } = writeModuleWithHelper();
    const { shipped, contents } = shipModule(main, 'compute', { depends: [helper] });
    const { fetchFile, calls } = fetcher(contents);
    const loader = new ModuleLoader({ cacheDir });
    const [first, concurrent] = await Promise.all([loader.load(shipped, fetchFile), loader.load(shipped, fetchFile)]);
    expect(concurrent).toBe(first);
    expect(calls).toHaveLength(2);
    expect(await loader.load(shipped, fetchFile)).toBe(first);
    const fresh = await new ModuleLoader({ cacheDir }).load(shipped, fetchFile);
    expect(fresh(1)).toBe(3);
    expect(calls).toHaveLength(2);
  });

  it('rejects fetched content that does not match its hash, and replaces a corrupt file on disk', async () => {
    const { main, helper } = writeModuleWithHelper();
    const { shipped, contents } = shipModule(main, 'compute', { depends: [helper] });
    const helperHash = shipped.files.find((f) => f.path === 'lib/helper.js')!.hash;
    const tampered = new Map(contents).set(helperHash, new TextEncoder().encode('export function twice(x) { return 0; }\n'));
    const loading = new ModuleLoader({ cacheDir }).load(shipped, fetcher(tampered).fetchFile);
    await expect(loading).rejects.toThrow(HashMismatchError);
    await expect(loading).rejects.toThrow(/lib\/helper\.js/);

    // a corrupt file on disk (say, written by something else) is fetched again and replaced
    const onDisk = join(new ModuleLoader({ cacheDir }).modulesDir, shipped.hash, 'lib', 'helper.js');
    mkdirSync(join(onDisk, '..'), { recursive: true });
    writeFileSync(onDisk, 'export function twice(x) { return 0; }\n');
    const { fetchFile, calls } = fetcher(contents);
    expect((await new ModuleLoader({ cacheDir }).load(shipped, fetchFile))(1)).toBe(3);
    expect(calls).toContain(helperHash);
    expect(readFileSync(onDisk, 'utf8')).toBe(readFileSync(helper, 'utf8'));
  });

  it('rejects a bundle hash that does not match the file list', async () => {
    const { main } = writeModuleWithHelper();
    const { shipped, contents } = shipModule(main, 'compute');
    const forged = { ...shipped, hash: sha256('another bundle') };
    await expect(new ModuleLoader({ cacheDir }).load(forged, fetcher(contents).fetchFile)).rejects.toThrow(HashMismatchError);
  });

  it('rejects unsafe paths and malformed shipped modules before fetching anything', async () => {
    const loader = new ModuleLoader({ cacheDir });
    const { fetchFile, calls } = fetcher(new Map());
    const file = { hash: sha256('x'), size: 1 };
    for (const path of ['../evil.mjs', 'a/../../evil.mjs', '/etc/evil.mjs', 'C:/evil.mjs', 'a\\evil.mjs', 'a\0.mjs', './a.mjs', 'a//b.mjs', '']) {
      await expect(loader.load(forge([{ path, ...file }]), fetchFile), path).rejects.toThrow(InvalidArgumentError);
    }
    await expect(loader.load(forge([{ path: 'a.mjs', ...file }], 'b.mjs'), fetchFile)).rejects.toThrow(/main 'b.mjs'/);
    await expect(loader.load(forge([{ path: 'a.mjs', ...file }, { path: 'a.mjs', ...file }]), fetchFile)).rejects.toThrow(/twice/);
    await expect(loader.load({ ...forge([{ path: 'a.mjs', ...file }]), hash: '../x' }, fetchFile)).rejects.toThrow(InvalidArgumentError);
    await expect(loader.load(forge([{ path: 'a.mjs', hash: 'x', size: 1 }]), fetchFile)).rejects.toThrow(InvalidArgumentError);
    await expect(loader.load({ kind: 'source' } as unknown as ShippedModule, fetchFile)).rejects.toThrow(/not a shipped module/);
    expect(calls).toEqual([]);
  });

  it('rejects a missing export, or one that is not a function, naming it and the module', async () => {
    const { main, helper } = writeModuleWithHelper();
    const loader = new ModuleLoader({ cacheDir });
    const missing = shipModule(main, 'nope', { depends: [helper] });
    await expect(loader.load(missing.shipped, fetcher(missing.contents).fetchFile)).rejects.toThrow(/module 'main.mjs' .*has no export 'nope'/);
    const notFn = shipModule(main, 'notAFunction', { depends: [helper] });
    await expect(loader.load(notFn.shipped, fetcher(notFn.contents).fetchFile)).rejects.toThrow(/export 'notAFunction' of module 'main.mjs' .*is not a function \(number\)/);
    await expect(loader.load(notFn.shipped, fetcher(notFn.contents).fetchFile)).rejects.toThrow(InvalidArgumentError);
  });

  it('loads a .js module importing zerocos and an installed package from a cache outside the package', async () => {
    const [main] = writeFiles({
      'uses-packages.js': `import * as zerocos from 'zerocos';\nimport { pack } from 'msgpackr';\nexport function probe() { return [typeof zerocos.remote, pack(1).length]; }\n`,
    });
    const { shipped, contents } = shipModule(main!, 'probe');
    const loader = new ModuleLoader({ cacheDir });
    expect(loader.modulesDir.startsWith(cacheDir)).toBe(true);
    const probe = await loader.load(shipped, fetcher(contents).fetchFile);
    expect(probe()).toEqual(['function', 1]);
    // the same file runs by hand in the cache too: plain files and links, no loader hooks
    const copy = join(loader.modulesDir, shipped.hash, 'uses-packages.js');
    const printed = execFileSync(process.execPath, ['--input-type=module', '-e', `import { probe } from ${JSON.stringify(pathToFileURL(copy).href)}; console.log(JSON.stringify(probe()))`], { encoding: 'utf8' });
    expect(JSON.parse(printed)).toEqual(['function', 1]);
  });

  it('defaults to <user cache>/zerocos, and to a private directory in the OS temp directory when that is not writable', () => {
    expect(new ModuleLoader({ userCacheDir: join(cacheDir, 'xdg') }).modulesDir.startsWith(join(cacheDir, 'xdg', 'zerocos') + sep)).toBe(true);
    const notADirectory = join(cacheDir, 'a-file');
    writeFileSync(notADirectory, '');
    const fallback = new ModuleLoader({ userCacheDir: notADirectory }).modulesDir;
    expect(fallback.startsWith(join(tmpdir(), `zerocos-${process.getuid!()}`) + sep)).toBe(true);
    expect(statSync(join(tmpdir(), `zerocos-${process.getuid!()}`)).mode & 0o077).toBe(0);
  });

  it('fails with ModuleCacheError when the given cache directory cannot be written', async () => {
    const { main } = writeModuleWithHelper();
    const { shipped, contents } = shipModule(main, 'compute');
    writeFileSync(join(cacheDir, 'a-file'), '');
    const loader = new ModuleLoader({ cacheDir: join(cacheDir, 'a-file', 'cache') });
    await expect(loader.load(shipped, fetcher(contents).fetchFile)).rejects.toThrow(ModuleCacheError);
  });
});
