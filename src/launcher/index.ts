/**
 * What `bin/run.js` runs: loads the CLI bundle (dist/ceso.cjs) through the compile cache and
 * starts it. Built apart from the bundle, as dist/launcher.js, so it stays small.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cesoHome } from '../config/home.js';
import { cacheKeyOf, loadBundle, type CompileCache } from './compile-cache.js';

/** A hash of dist/ceso.cjs, set by scripts/build.mjs. */
declare const CESO_BUILD_ID: string;

// require() of an ES module, which the bundle uses to load oclif's plugins, is on by default from 20.19.
const MINIMUM_NODE = [20, 19] as const;

export async function launch(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  requireSupportedNode();
  const bundlePath = fileURLToPath(new URL('./ceso.cjs', import.meta.url));
  const bundle = loadBundle<{ main(): Promise<void> }>(bundlePath, compileCache(argv));
  process.once('exit', (code) => {
    if (code === 0) bundle.saveCache();
  });
  await bundle.exports.main();
}

function compileCache(argv: readonly string[]): CompileCache | undefined {
  // Coverage needs freshly compiled, instrumented code; and the cache can be turned off by name.
  if (process.env.NODE_V8_COVERAGE !== undefined || process.env.CESO_NO_COMPILE_CACHE === '1') return undefined;
  return { directory: join(cesoHome(), 'cache'), buildId: CESO_BUILD_ID, key: cacheKeyOf(argv) };
}

/**
 * Replaces oclif's engine check, which re-reads package.json and parses semver ranges on every run.
 * Too old a Node cannot load the bundle at all, so this one stops with a clear message.
 */
function requireSupportedNode(): void {
  process.env.OCLIF_DISABLE_ENGINE_WARNING = '1';
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  if (major < MINIMUM_NODE[0] || (major === MINIMUM_NODE[0] && minor < MINIMUM_NODE[1])) {
    process.stderr.write(`Error: ceso needs Node.js ${MINIMUM_NODE.join('.')} or later; this is ${process.versions.node}\nHint: install a current Node.js 20 LTS or later\n`);
    process.exit(1);
  }
}

export { loadBundle } from './compile-cache.js';
