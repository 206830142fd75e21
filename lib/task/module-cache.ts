/**
 * Where a worker writes shipped module bundles, and how code there finds packages.
 *
 * The cache lives in the user's cache directory, not in the zerocos package: an installed
 * package folder is often read-only to the user a worker runs as. A file outside the package
 * would lose what a file inside it had for free: the bare specifier `'zerocos'` resolving to the
 * very module instance the worker runs (package self-reference), other bare specifiers through
 * the node_modules folders above the package (the application's dependencies), and `.js` files
 * being ESM (the package's `"type": "module"`). The cache rebuilds all three with plain files, so
 * it works the same in-process, in a program job's child process and for `node file.js` run by
 * hand in the cache:
 *
 * ```
 * <cacheDir>/<install id>/node_modules -> /node_modules            (the farthest lookup folder)
 * <cacheDir>/<install id>/_/node_modules -> /app/node_modules
 * <cacheDir>/<install id>/_/_/node_modules -> /app/node_modules/zerocos/node_modules (the nearest)
 * <cacheDir>/<install id>/_/_/_/node_modules/zerocos -> /app/node_modules/zerocos
 * <cacheDir>/<install id>/_/_/_/package.json          {"type": "module"}
 * <cacheDir>/<install id>/_/_/_/modules/<bundle hash>/...  the bundles
 * ```
 *
 * Node looks a bare specifier up in each ancestor's node_modules, nearest first: here in the
 * same order as from inside the zerocos package, and it follows the symbolic links to the real
 * paths, so `'zerocos'` is the worker's own instance. Node resolves them only when a module
 * imports, so a package installed later is found; a link to a folder that does not exist is
 * harmless. The install id is a hash of the package's real path: two installs of zerocos on one
 * host (two applications) get their own lookup folders, and share nothing else.
 */
import { createHash, randomUUID } from 'node:crypto';
import { accessSync, constants, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ZerocosError } from '../common/errors.js';

/** Options of the module cache (see {@link ModuleLoaderOptions}). */
export interface ModuleCacheOptions {
  /**
   * The cache's base directory, created if missing; it must be writable, or loads fail with
   * {@link ModuleCacheError}. Workers take it from the `ZEROCOS_CACHE_DIR` environment variable.
   * @default `<userCacheDir>/zerocos` when that can be created and written, else
   *   `<os.tmpdir()>/zerocos-<uid>` (made private to this user)
   */
  cacheDir?: string | undefined;
  /**
   * The user's cache directory, for the default `cacheDir`. Workers take it from `XDG_CACHE_HOME`.
   * @default `~/.cache`
   */
  userCacheDir?: string | undefined;
}

/** The module cache cannot be created or written (a read-only or foreign directory). */
export class ModuleCacheError extends ZerocosError {
  override readonly code = 'ECACHE';
}

/**
 * Makes (or checks) the cache layout for the zerocos package this file belongs to, and returns
 * the directory that holds one subdirectory per bundle hash. Synchronous, idempotent, and safe
 * when several worker processes of one host run it at once (every write is a rename).
 * @throws {ModuleCacheError} no usable cache directory
 */
export function prepareModuleCache(options: ModuleCacheOptions): string {
  const base = cacheBase(options);
  const root = realpathSync(packageRoot());
  const lookup = nodeModulesLookup(root);
  const install = join(base, createHash('sha256').update(root).digest('hex').slice(0, 16));
  try {
    // The farthest lookup folder is linked at the top, the nearest one level deeper, and so on.
    let level = install;
    for (const folder of [...lookup].reverse()) {
      mkdirSync(level, { recursive: true });
      linkAtomically(folder, join(level, 'node_modules'));
      level = join(level, '_');
    }
    mkdirSync(join(level, 'node_modules'), { recursive: true });
    linkAtomically(root, join(level, 'node_modules', 'zerocos'));
    const manifest = join(level, 'package.json');
    if (!existsSync(manifest)) writeAtomically(manifest, new TextEncoder().encode('{"type": "module", "private": true}\n'));
    const modules = join(level, 'modules');
    mkdirSync(modules, { recursive: true });
    return modules;
  } catch (error) {
    throw new ModuleCacheError(`cannot prepare the module cache in ${install}: ${(error as Error).message} (set ZEROCOS_CACHE_DIR to a writable directory)`, { cause: error });
  }
}

/** Writes a temporary file beside `path` and renames it: readers see no file or the whole file. */
export function writeAtomically(path: string, content: Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.${randomUUID()}.tmp`;
  try {
    writeFileSync(temp, content);
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}

function cacheBase(options: ModuleCacheOptions): string {
  if (options.cacheDir) {
    const dir = resolve(options.cacheDir);
    try {
      mkdirSync(dir, { recursive: true });
      accessSync(dir, constants.W_OK);
    } catch (error) {
      throw new ModuleCacheError(`the module cache directory ${dir} is not writable: ${(error as Error).message}`, { cause: error });
    }
    return dir;
  }
  const preferred = join(options.userCacheDir || join(homedir(), '.cache'), 'zerocos');
  try {
    mkdirSync(preferred, { recursive: true, mode: 0o700 });
    accessSync(preferred, constants.W_OK);
    return preferred;
  } catch {
    // A service account often has no (writable) home: the OS temp directory is the fallback.
  }
  const uid = process.getuid?.();
  const fallback = join(tmpdir(), `zerocos-${uid ?? 'user'}`);
  try {
    mkdirSync(fallback, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new ModuleCacheError(`no writable module cache: ${preferred} and ${fallback} both failed (set ZEROCOS_CACHE_DIR): ${(error as Error).message}`, { cause: error });
  }
  // In a shared temp directory another user could have made it first and planted links there.
  const stat = lstatSync(fallback);
  if (!stat.isDirectory() || (uid !== undefined && stat.uid !== uid) || (stat.mode & 0o022) !== 0) {
    throw new ModuleCacheError(`the module cache ${fallback} is not a private directory of this user (set ZEROCOS_CACHE_DIR)`);
  }
  return fallback;
}

/** The node_modules folders Node searches for a bare specifier imported from inside `dir`, nearest first. */
function nodeModulesLookup(dir: string): string[] {
  const folders: string[] = [];
  for (let at = dir; ; at = dirname(at)) {
    if (basename(at) !== 'node_modules') folders.push(join(at, 'node_modules'));
    if (dirname(at) === at) return folders;
  }
}

/** Points `path` at `target`, replacing a link that points elsewhere (the rename is atomic). */
function linkAtomically(target: string, path: string): void {
  try {
    if (readlinkSync(path) === target) return;
  } catch {
    // absent (or not a link: the rename below fails and says so)
  }
  const temp = `${path}.${process.pid}.${randomUUID()}.tmp`;
  symlinkSync(target, temp, 'junction');
  try {
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}

/** The directory above this file whose package.json is zerocos's (dist/lib/task in a build). */
function packageRoot(): string {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'zerocos') return dir;
      } catch {
        // an unreadable package.json is not ours; keep walking up
      }
    }
    if (dirname(dir) === dir) throw new ModuleCacheError(`no zerocos package.json above ${start}`);
  }
}
