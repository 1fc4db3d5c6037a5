// Bundles the CLI with esbuild and writes oclif's command manifest.
// Why a bundle: start-up is most of a CLI's time, and resolving and compiling some three hundred
// CommonJS modules of oclif and axios costs more than Node's own start. One ES module graph with
// code splitting loads each command's code only, shares one copy of oclif, and leaves the SSH path
// (ssh2 and its crypto) out of every run that does not use it.
import { build } from 'esbuild';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');

function commandEntries(directory) {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) return commandEntries(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

// axios probes Node's web globals when imported: it builds a fetch adapter (touching fetch and
// Request) and reads globalThis.FormData. In Node those are lazy getters that load undici (~10 ms
// per run), for features ceso never uses (it uses the http adapter and sends no multipart
// bodies). Both probes are removed from the bundle; the build fails if axios changes them.
const AXIOS_PATCHES = [
  { file: /axios[\\/]lib[\\/]adapters[\\/]fetch\.js$/, eager: /const adapter = getFetch\(\);\s*export default adapter;/, replacement: '' },
  { file: /axios[\\/]lib[\\/]utils\.js$/, eager: /const FormDataCtor = typeof G\.FormData !== 'undefined' \? G\.FormData : undefined;/, replacement: 'const FormDataCtor = undefined;' },
];
const lazyAxiosGlobals = {
  name: 'lazy-axios-globals',
  setup(builder) {
    for (const patch of AXIOS_PATCHES) {
      builder.onLoad({ filter: patch.file }, async (args) => {
        const source = readFileSync(args.path, 'utf8');
        if (!patch.eager.test(source)) throw new Error(`axios changed ${args.path}: review AXIOS_PATCHES in scripts/build.mjs`);
        return { contents: source.replace(patch.eager, patch.replacement), loader: 'js' };
      });
    }
  },
};

rmSync(dist, { recursive: true, force: true });
rmSync(join(root, 'oclif.manifest.json'), { force: true });

await build({
  absWorkingDir: root,
  entryPoints: [join(root, 'src/main.ts'), join(root, 'src/hooks/command-not-found.ts'), ...commandEntries(join(root, 'src/commands'))],
  outdir: dist,
  outbase: join(root, 'src'),
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  minifySyntax: true,
  chunkNames: 'chunks/[name]-[hash]',
  // oclif can load TypeScript sources through these in development; ceso ships JavaScript only.
  // node-ssh/ssh2 stay in node_modules: ssh2 has optional native addons, and they load lazily.
  external: ['typescript', 'ts-node', 'tsx', 'node-ssh', 'ssh2'],
  // form-data (and the 200 kB mime-db behind it) serve multipart bodies, which ceso never sends.
  alias: { 'form-data': join(root, 'scripts/stubs/form-data.mjs') },
  plugins: [lazyAxiosGlobals],
  banner: { js: "import { createRequire as __cesoCreateRequire } from 'node:module'; const require = __cesoCreateRequire(import.meta.url);" },
  logLevel: 'warning',
  metafile: true,
}).then((result) => {
  writeFileSync(join(dist, 'meta.json'), JSON.stringify(result.metafile));
});

// The manifest lets oclif find a command without importing every command file.
const { Plugin } = await import('@oclif/core');
const plugin = new Plugin({ root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true, isRoot: true });
await plugin.load();
writeFileSync(join(root, 'oclif.manifest.json'), JSON.stringify(plugin.manifest, null, 2));
// The published JSON contract: one JSON Schema per command's --json result, under schema/.
const { buildSchemas } = await import('./build-schemas.mjs');
await buildSchemas();
console.log(`built ${relative(root, dist)}, schema/ and oclif.manifest.json (${Object.keys(plugin.manifest.commands).length} commands)`);
