/**
 * Loads ceso's CommonJS bundle with V8's code cache, the job Node 22's module.enableCompileCache()
 * does (Node 20 has no such switch). Most of a short CLI run is spent compiling JavaScript: the
 * cache holds the bytecode of every function the previous run of the same command compiled, so a
 * warm run skips parsing and compiling the bundle.
 *
 * - One cache file per command (the functions `vm list` runs are not those `vm create` runs), made
 *   by the first run of that command that succeeds after an install or upgrade (the launcher saves
 *   it at exit; a failed run saves nothing, so an error path never becomes the cached one).
 * - File names carry the bundle's build id, the V8 version and the architecture; files of other
 *   builds are removed when a new one is written. V8 rejects data that does not match the source or
 *   its own version and flags: the bundle then compiles as if there were no cache, and is re-cached.
 * - Bytecode is code, so the directory is used only when it belongs to this user and nobody else
 *   can write to it (ceso creates it 0700, files 0600, written to a temporary name then renamed).
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

export interface CompileCache {
  directory: string;
  /** Identifies the bundle's build (a hash of its text). */
  buildId: string;
  /** The command this run executes, as a file-name-safe word (see cacheKeyOf). */
  key: string;
}

/** What happened to the cache in this run, for tests and diagnostics. */
export type CacheOutcome = 'disabled' | 'unsafe-directory' | 'missing' | 'accepted' | 'rejected';

export interface LoadedBundle<T> {
  exports: T;
  cache: CacheOutcome;
  cacheFile: string | undefined;
  /**
   * Writes the bytecode compiled so far when the cache was missing or rejected (else does
   * nothing); call it at the end of a successful run, when the command's functions are compiled.
   */
  saveCache(): void;
}

// The bundle is built as `(function (exports, require, module, __filename, __dirname) {...})`, so
// the script's text is the file's text: coverage and stack positions need no wrapper offset.
type ModuleFunction = (exports: unknown, require: NodeJS.Require, module: Module, filename: string, dirname: string) => void;

export function loadBundle<T>(bundlePath: string, cache: CompileCache | undefined): LoadedBundle<T> {
  const source = readFileSync(bundlePath, 'utf8');
  const cacheFile = cache === undefined ? undefined : join(cache.directory, `${cache.buildId}-${process.versions.v8}-${process.arch}-${cache.key}.v8`);
  let outcome: CacheOutcome = cache === undefined ? 'disabled' : 'missing';
  let cachedData: Buffer | undefined;
  if (cache !== undefined && cacheFile !== undefined) {
    if (!isPrivateDirectory(cache.directory)) outcome = 'unsafe-directory';
    else cachedData = readIfPresent(cacheFile);
  }

  const script = new vm.Script(source, {
    filename: bundlePath,
    ...(cachedData === undefined ? {} : { cachedData }),
  });
  if (cachedData !== undefined) outcome = script.cachedDataRejected === true ? 'rejected' : 'accepted';

  const bundle = new Module(bundlePath);
  bundle.filename = bundlePath;
  bundle.paths = (Module as unknown as { _nodeModulePaths(from: string): string[] })._nodeModulePaths(dirname(bundlePath));
  // oclif loads its commands with require(bundlePath): it must find this instance, not a second copy.
  (Module as unknown as { _cache: Record<string, Module> })._cache[bundlePath] = bundle;
  const moduleFunction = script.runInThisContext() as ModuleFunction;
  moduleFunction.call(bundle.exports, bundle.exports, bundleRequire(bundlePath), bundle, bundlePath, dirname(bundlePath));
  bundle.loaded = true;

  const stale = outcome === 'missing' || outcome === 'rejected';
  return {
    exports: bundle.exports as T,
    cache: outcome,
    cacheFile,
    saveCache: () => {
      if (cache !== undefined && cacheFile !== undefined && stale) writeCache(cache, cacheFile, script);
    },
  };
}

/**
 * The bundle's require. The bundle has no import(): V8 drops a script's dynamic-import host options
 * when it comes from a code cache (Node 20), so esbuild turns import() into require(), and this
 * require also takes the file: URLs oclif imports plugins by (ES modules load through require()).
 */
function bundleRequire(bundlePath: string): NodeJS.Require {
  const plain = createRequire(bundlePath);
  const require = (id: string): unknown => plain(id.startsWith('file:') ? fileURLToPath(id) : id);
  return Object.assign(require, plain) as NodeJS.Require;
}

/**
 * The cache partition for a command line: its leading command words (`vm-list`), or `help` when
 * help or the version is asked for, since those run other code than the command itself.
 */
export function cacheKeyOf(argv: readonly string[]): string {
  if (argv.some((arg) => arg === '--help' || arg === '-h' || arg === '--version' || arg === 'help')) return 'help';
  const words: string[] = [];
  for (const arg of argv) {
    if (words.length === 2 || !/^[a-z][a-z0-9-]{0,31}$/.test(arg)) break;
    words.push(arg);
  }
  return words.length === 0 ? 'root' : words.join('-');
}

function isPrivateDirectory(directory: string): boolean {
  try {
    const stats = statSync(directory);
    if (!stats.isDirectory()) return false;
    const owner = process.getuid?.();
    return (owner === undefined || stats.uid === owner) && (stats.mode & 0o022) === 0;
  } catch {
    return true; // absent: it is created private when the cache is first written
  }
}

function readIfPresent(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

/** Best effort: the cache only ever saves time, so a full disk or a read-only home costs nothing else. */
function writeCache(cache: CompileCache, cacheFile: string, script: vm.Script): void {
  const temporary = `${cacheFile}.${process.pid}.tmp`;
  try {
    mkdirSync(cache.directory, { recursive: true, mode: 0o700 });
    if (!isPrivateDirectory(cache.directory)) return;
    writeFileSync(temporary, script.createCachedData(), { mode: 0o600 });
    renameSync(temporary, cacheFile);
    for (const name of readdirSync(cache.directory)) {
      if (name.endsWith('.v8') && !name.startsWith(`${cache.buildId}-`)) unlinkSync(join(cache.directory, name));
    }
  } catch {
    try {
      unlinkSync(temporary);
    } catch {
      // nothing was written
    }
  }
}
