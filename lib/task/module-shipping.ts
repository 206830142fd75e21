/**
 * Module exports as remote functions, for hosts that do not share a filesystem: the caller
 * ships a module file and the files it lists as dependencies, content-addressed by sha256; a
 * worker materialises the bundle in a local cache directory once and imports it from there.
 * Unlike a self-contained function (remote-function.ts), the code may import other modules:
 * listed ones by relative specifier, installed packages by bare specifier (see {@link ModuleLoader}).
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { dirname, join, parse as parsePath, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { InvalidArgumentError } from '../common/errors.js';
import { prepareModuleCache, writeAtomically, type ModuleCacheOptions } from './module-cache.js';
import { HashMismatchError } from './remote-function.js';

/**
 * A module export as it travels to a worker: a plain value, safe for msgpack. File contents
 * travel separately, fetched by hash (see {@link ModuleLoader.load}).
 */
export interface ShippedModule {
  kind: 'module';
  /** The export's name in the main module (`'default'` for the default export). */
  name: string;
  /** The main module's path relative to the bundle root, posix separators. */
  main: string;
  /** Every file of the bundle, sorted by path: relative posix path, sha256 hex of the content, size in bytes. */
  files: { path: string; hash: string; size: number }[];
  /** sha256 hex over the sorted (path, hash) list: the bundle id, and its cache directory's name. */
  hash: string;
}

/** Options of {@link shipModule}. */
export interface ShipModuleOptions {
  /** Further files the main module imports (by relative specifier), as paths or `file:` URLs. @default [] */
  depends?: (string | URL)[];
}

/**
 * Prepares the export `exportName` of the module `file` for shipping, with the files in
 * `options.depends`. Reads every file now (synchronously); the bundle root is the deepest
 * directory containing all of them, and the main module's relative imports must stay inside
 * the bundle. Only the listed files are shipped: nothing follows the module's imports. The
 * export itself is not checked here (that would mean importing the module); the worker's
 * {@link ModuleLoader.load} reports a missing one.
 *
 * `.js` files are ESM on the worker (the cache is `"type": "module"`); `.cjs` files are CommonJS.
 *
 * @returns the {@link ShippedModule}, and every distinct file content by its hash, to serve the
 *   worker's `fetchFile`.
 * @throws {InvalidArgumentError} an empty export name; a file that does not exist, is a
 *   directory or cannot be read (named); files on different filesystem roots.
 * @example
 * const { shipped, contents } = shipModule(import.meta.url, 'square', { depends: [new URL('./lib/math.js', import.meta.url)] });
 */
export function shipModule(
  file: string | URL,
  exportName: string,
  options: ShipModuleOptions = {},
): { shipped: ShippedModule; contents: Map<string, Uint8Array> } {
  if (typeof exportName !== 'string' || exportName === '') throw new InvalidArgumentError('exportName must be a non-empty string');
  const mainPath = toPath(file);
  const paths = [...new Set([mainPath, ...(options.depends ?? []).map(toPath)])];
  const root = commonDirectory(paths);
  const contents = new Map<string, Uint8Array>();
  const files = paths.map((path) => {
    const content = readFile(path);
    const hash = sha256(content);
    contents.set(hash, content);
    return { path: toPosix(relative(root, path)), hash, size: content.byteLength };
  });
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const shipped: ShippedModule = { kind: 'module', name: exportName, main: toPosix(relative(root, mainPath)), files, hash: bundleHash(files) };
  return { shipped, contents };
}

/** True when `value` has the shape of a {@link ShippedModule} (paths and hashes are not checked). */
export function isShippedModule(value: unknown): value is ShippedModule {
  const v = value as ShippedModule;
  return (
    typeof value === 'object' && value !== null && v.kind === 'module' &&
    typeof v.name === 'string' && typeof v.main === 'string' && typeof v.hash === 'string' &&
    Array.isArray(v.files) &&
    v.files.every((f) => typeof f === 'object' && f !== null && typeof f.path === 'string' && typeof f.hash === 'string' && Number.isSafeInteger(f.size) && f.size >= 0)
  );
}

/** Options of a {@link ModuleLoader}: where its cache is (see module-cache.ts). */
export type ModuleLoaderOptions = ModuleCacheOptions;

/**
 * A worker's shipped modules: materialises bundles on disk and imports their exports.
 *
 * Bundles are written to a cache in the user's cache directory (`~/.cache/zerocos`, else the OS
 * temp directory; see {@link ModuleCacheOptions}), laid out so that code there resolves bare
 * specifiers as a file inside the zerocos package would: `'zerocos'` is the worker's own
 * instance, other packages come from the node_modules folders above the zerocos package (the
 * application's dependencies), and `.js` files are ESM (module-cache.ts explains how).
 */
export class ModuleLoader {
  readonly #options: ModuleLoaderOptions;
  #modulesDir: string | undefined;
  // Loaded exports by `${bundle hash}:${main}:${name}`, kept for the process's life: Node's module
  // cache holds the modules anyway. A bundle id covers files, not main, so main is in the key.
  readonly #loaded = new Map<string, Promise<(...args: unknown[]) => unknown>>();
  readonly #materialised = new Map<string, Promise<string>>();

  constructor(options: ModuleLoaderOptions = {}) {
    this.#options = { ...options };
  }

  /**
   * The directory holding one subdirectory per bundle hash; the cache is made on first use.
   * @throws {ModuleCacheError} no writable cache directory
   */
  get modulesDir(): string {
    return (this.#modulesDir ??= prepareModuleCache(this.#options));
  }

  /**
   * The export `shipped.name` of the shipped module. The first load of a bundle writes each
   * file missing (or corrupt) on disk, fetched with `fetchFile(hash)` and checked against its
   * hash; each file is written to a temporary name and renamed, so worker processes of one
   * host loading the same bundle at once are safe. Loads are cached in memory: the same export
   * resolves to the same function, and concurrent loads share one promise (a failed load is
   * forgotten, so it can be retried).
   *
   * @throws {InvalidArgumentError} (rejects with) not a ShippedModule; a path that is absolute,
   *   has `..`, `.` or empty segments, a backslash or NUL; duplicate paths; a main that is not
   *   a bundle file; hashes that are not sha256 hex; a missing export or one that is not a
   *   function (class exports are functions too).
   * @throws {HashMismatchError} the bundle hash does not match its file list, or fetched
   *   content does not match its file's hash.
   * @throws {ModuleCacheError} no writable cache directory (see {@link ModuleCacheOptions}).
   * Errors from `fetchFile`, the filesystem and `import()` (syntax errors, unresolvable
   * imports) reject the load as they are.
   */
  load(shipped: ShippedModule, fetchFile: (hash: string) => Promise<Uint8Array>): Promise<(...args: unknown[]) => unknown> {
    try {
      validate(shipped);
    } catch (error) {
      return Promise.reject(error);
    }
    const key = `${shipped.hash}:${shipped.main}:${shipped.name}`;
    let loading = this.#loaded.get(key);
    if (!loading) {
      loading = this.#import(shipped, fetchFile);
      this.#loaded.set(key, loading);
      loading.catch(() => this.#loaded.delete(key));
    }
    return loading;
  }

  /**
   * Writes the bundle's files under the cache directory (as `load` does) without importing
   * anything, and resolves to the path of its main file: for programs run as child processes.
   * @throws as {@link load}, except for the export checks
   */
  async materialise(shipped: ShippedModule, fetchFile: (hash: string) => Promise<Uint8Array>): Promise<string> {
    validate(shipped);
    const dir = await this.#materialise(shipped, fetchFile);
    return join(dir, ...shipped.main.split('/'));
  }

  async #import(shipped: ShippedModule, fetchFile: (hash: string) => Promise<Uint8Array>): Promise<(...args: unknown[]) => unknown> {
    const dir = await this.#materialise(shipped, fetchFile);
    const mainPath = join(dir, ...shipped.main.split('/'));
    const module = (await import(pathToFileURL(mainPath).href)) as Record<string, unknown>;
    const where = `module '${shipped.main}' (bundle ${shipped.hash.slice(0, 12)})`;
    if (!(shipped.name in module)) throw new InvalidArgumentError(`${where} has no export '${shipped.name}'`);
    const value = module[shipped.name];
    if (typeof value !== 'function') throw new InvalidArgumentError(`export '${shipped.name}' of ${where} is not a function (${value === null ? 'null' : typeof value})`);
    return value as (...args: unknown[]) => unknown;
  }

  /** The bundle's directory, once every file in it is present with the right content. */
  #materialise(shipped: ShippedModule, fetchFile: (hash: string) => Promise<Uint8Array>): Promise<string> {
    let pending = this.#materialised.get(shipped.hash);
    if (!pending) {
      pending = (async () => {
        const dir = join(this.modulesDir, shipped.hash);
        for (const file of shipped.files) {
          const target = join(dir, ...file.path.split('/'));
          // Checked by content, not by existence: a file can only be absent or complete (see
          // writeAtomically), but the cache directory is not ours alone.
          if (hasContent(target, file.size, file.hash)) continue;
          const content = await fetchFile(file.hash);
          if (!(content instanceof Uint8Array)) throw new InvalidArgumentError(`fetchFile('${file.hash}') did not resolve to a Uint8Array`);
          const actual = sha256(content);
          if (actual !== file.hash) throw new HashMismatchError(file.hash, actual, `shipped module file '${file.path}'`);
          writeAtomically(target, content);
        }
        return dir;
      })();
      this.#materialised.set(shipped.hash, pending);
      // Forget every outcome: a later load re-checks the disk (cheap once the import is cached).
      void pending.then(
        () => this.#materialised.delete(shipped.hash),
        () => this.#materialised.delete(shipped.hash),
      );
    }
    return pending;
  }
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Checks what load() will turn into file names: nothing may escape the bundle directory. */
function validate(shipped: ShippedModule): void {
  if (!isShippedModule(shipped)) throw new InvalidArgumentError('not a shipped module: expected {kind: "module", name, main, files: [{path, hash, size}], hash}');
  if (shipped.name === '') throw new InvalidArgumentError('shipped module has an empty export name');
  if (!SHA256_HEX.test(shipped.hash)) throw new InvalidArgumentError(`shipped module hash is not sha256 hex: '${shipped.hash}'`);
  const seen = new Set<string>();
  for (const file of shipped.files) {
    checkPath(file.path);
    if (seen.has(file.path)) throw new InvalidArgumentError(`shipped module lists '${file.path}' twice`);
    seen.add(file.path);
    if (!SHA256_HEX.test(file.hash)) throw new InvalidArgumentError(`hash of shipped module file '${file.path}' is not sha256 hex`);
  }
  if (!seen.has(shipped.main)) throw new InvalidArgumentError(`shipped module main '${shipped.main}' is not one of its files`);
  const sorted = [...shipped.files].sort((a, b) => (a.path < b.path ? -1 : 1));
  const actual = bundleHash(sorted);
  if (actual !== shipped.hash) throw new HashMismatchError(shipped.hash, actual, 'shipped module bundle');
}

function checkPath(path: string): void {
  const unsafe =
    path === '' || path.includes('\\') || path.includes('\0') || path.startsWith('/') || /^[a-zA-Z]:/.test(path) ||
    path.split('/').some((segment) => segment === '' || segment === '.' || segment === '..');
  if (unsafe) throw new InvalidArgumentError(`unsafe path in shipped module: ${JSON.stringify(path)} (must be relative, posix, without '.', '..' or empty segments)`);
}

function bundleHash(sortedFiles: readonly { path: string; hash: string }[]): string {
  const hash = createHash('sha256');
  // NUL and newline cannot occur in a checked path or a hex hash, so the encoding is unambiguous.
  for (const file of sortedFiles) hash.update(`${file.path}\0${file.hash}\n`, 'utf8');
  return hash.digest('hex');
}

function sha256(content: Uint8Array): string {
  return createHash('sha256').update(content).digest('hex');
}

function hasContent(path: string, size: number, hash: string): boolean {
  try {
    if (statSync(path).size !== size) return false;
    return sha256(readFileSync(path)) === hash;
  } catch {
    return false;
  }
}

function toPath(file: string | URL): string {
  if (file instanceof URL || /^file:/i.test(file)) {
    try {
      return fileURLToPath(file);
    } catch (error) {
      throw new InvalidArgumentError(`not a file URL: ${String(file)}`, { cause: error });
    }
  }
  if (typeof file !== 'string' || file === '') throw new InvalidArgumentError('a module file must be a path or a file: URL');
  return resolve(file);
}

function readFile(path: string): Uint8Array {
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch (error) {
    throw new InvalidArgumentError(`cannot ship '${path}': ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String(error)}`, { cause: error });
  }
  if (!isFile) throw new InvalidArgumentError(`cannot ship '${path}': not a file`);
  try {
    return readFileSync(path);
  } catch (error) {
    throw new InvalidArgumentError(`cannot ship '${path}': ${String(error)}`, { cause: error });
  }
}

/** The deepest directory containing every one of the (absolute) `files`. */
function commonDirectory(files: string[]): string {
  const [first, ...rest] = files.map((file) => dirname(file));
  const fsRoot = parsePath(first!).root;
  if (rest.some((dir) => parsePath(dir).root !== fsRoot)) throw new InvalidArgumentError(`cannot ship files from different filesystem roots: ${files.join(', ')}`);
  let common = first!.slice(fsRoot.length).split(sep).filter(Boolean);
  for (const dir of rest) {
    const segments = dir.slice(fsRoot.length).split(sep).filter(Boolean);
    let i = 0;
    while (i < common.length && i < segments.length && common[i] === segments[i]) i++;
    common = common.slice(0, i);
  }
  return fsRoot + common.join(sep);
}

function toPosix(path: string): string {
  return sep === '/' ? path : path.split(sep).join('/');
}
