// Bundles the CLI with esbuild and writes oclif's command manifest.
//
// Why one CommonJS bundle: start-up is most of a CLI's time, and resolving, reading and compiling
// some three hundred modules of oclif and axios costs more than Node's own start. The whole CLI is
// one script, dist/ceso.cjs, that bin/run.js loads through V8's code cache (src/launcher): a warm
// run deserializes bytecode instead of compiling. CommonJS, because Node 20 can use a code cache
// for a vm.Script but not for an ES module. Code a command does not run costs little: V8 compiles
// functions lazily, so an unused function is never compiled. ssh2 (native addons) stays in
// node_modules and loads only on the SSH path. pg (the postgres state backend) is bundled, and its
// CommonJS modules run only when src/state/postgres.ts first imports it.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dependencyPatches } from './dependency-patches.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
const bundlePath = join(dist, 'ceso.cjs');

rmSync(dist, { recursive: true, force: true });
rmSync(join(root, 'oclif.manifest.json'), { force: true });

const shared = { absWorkingDir: root, bundle: true, platform: 'node', target: 'node20', sourcemap: 'linked', minifySyntax: true, logLevel: 'warning' };

const { metafile } = await build({
  ...shared,
  entryPoints: [join(root, 'src/main.ts')],
  outfile: bundlePath,
  format: 'cjs',
  // The file is the module function itself, so the launcher compiles the file's exact text.
  banner: { js: '(function (exports, require, module, __filename, __dirname) {' },
  footer: { js: '})' },
  define: { 'import.meta.url': '__cesoModuleUrl' },
  // import() becomes require() (see bundleRequire in src/launcher/compile-cache.ts for why).
  supported: { 'dynamic-import': false },
  inject: [join(root, 'scripts/stubs/import-meta-url.mjs')],
  // oclif can load TypeScript sources through these in development; ceso ships JavaScript only.
  // pg-native: pg's optional libpq binding, required only if asked for (pg.native); ceso uses pg's pure-JavaScript client.
  external: ['typescript', 'ts-node', 'tsx', 'node-ssh', 'ssh2', 'pg-native'],
  // Stand-ins for what axios imports at start-up and ceso never uses (scripts/stubs).
  alias: { 'form-data': join(root, 'scripts/stubs/form-data.mjs'), http2: join(root, 'scripts/stubs/lazy-http2.mjs') },
  plugins: [dependencyPatches],
  metafile: true,
});
writeFileSync(join(dist, 'meta.json'), JSON.stringify(metafile));

const buildId = createHash('sha256').update(readFileSync(bundlePath)).digest('hex').slice(0, 16);
await build({
  ...shared,
  entryPoints: [join(root, 'src/launcher/index.ts')],
  outfile: join(dist, 'launcher.js'),
  format: 'esm',
  define: { CESO_BUILD_ID: JSON.stringify(buildId) },
});

// The manifest lets oclif answer help and find a command's flags without running the bundle's
// command code; oclif reads the commands from the bundle's COMMANDS export ("explicit" discovery).
const { loadBundle } = await import(join(dist, 'launcher.js'));
loadBundle(bundlePath, undefined);
const { Plugin } = await import('@oclif/core');
const plugin = new Plugin({ root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true, isRoot: true });
await plugin.load();
const commandCount = Object.keys(plugin.manifest.commands).length;
if (commandCount === 0) throw new Error('the bundle exported no commands: check COMMANDS in src/commands/index.ts');
writeFileSync(join(root, 'oclif.manifest.json'), JSON.stringify(plugin.manifest, null, 2));
// The published JSON contract: one JSON Schema per command's --json result, under schema/.
const { buildSchemas } = await import('./build-schemas.mjs');
await buildSchemas();
console.log(`built ${relative(root, dist)} (build ${buildId}), schema/ and oclif.manifest.json (${commandCount} commands)`);
