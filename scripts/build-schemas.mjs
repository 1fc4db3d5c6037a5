// Writes schema/: the JSON Schema of every command's --json output and of the error envelope,
// generated from the zod schemas in src/contract (one file per command id, error.json, and
// index.json). Done at build time so that zod's JSON Schema generator never loads in the CLI:
// `ceso schema` reads these files, which ship with the package.
//
// Called by scripts/build.mjs (`await buildSchemas()`), or on its own: node scripts/build-schemas.mjs
import { build } from 'esbuild';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

export async function buildSchemas() {
  const outfile = join(root, '.tmp', 'contract-generate.mjs');
  await build({
    entryPoints: [join(root, 'src/contract/generate.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
  });
  // A fresh URL each call: a second build in the same process must not reuse a cached module.
  const { generateSchemaFiles } = await import(`${pathToFileURL(outfile).href}?t=${Date.now()}`);
  const files = generateSchemaFiles();
  const directory = join(root, 'schema');
  rmSync(directory, { recursive: true, force: true });
  mkdirSync(directory, { recursive: true });
  for (const [name, document] of Object.entries(files)) writeFileSync(join(directory, name), `${JSON.stringify(document, null, 2)}\n`);
  rmSync(outfile, { force: true });
  console.log(`wrote ${relative(root, directory)}/ (${Object.keys(files).length} JSON Schema files)`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await buildSchemas();
