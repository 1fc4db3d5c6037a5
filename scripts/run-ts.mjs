// Runs a TypeScript entry (the demo, the benchmark) by bundling it with esbuild into .tmp/, so
// they reuse the test bed's harness (test/support/*.ts) instead of a copy of it.
import { build } from 'esbuild';
import { join, basename } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = new URL('..', import.meta.url).pathname;
const entry = process.argv[2];
if (!entry) {
  console.error('usage: node scripts/run-ts.mjs FILE.ts [args]');
  process.exit(2);
}
const outfile = join(root, '.tmp', `${basename(entry, '.ts')}.mjs`);
await build({ entryPoints: [join(root, entry)], outfile, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'warning' });
process.argv.splice(2, 1);
await import(pathToFileURL(outfile).href);
