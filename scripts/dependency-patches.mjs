// Edits to dependencies made while bundling, each removing start-up work ceso never needs.
// Every patch names the exact text it replaces: the build fails if a dependency update changes
// it, so a patch can never silently stop applying or apply to the wrong code.
import { readFileSync } from 'node:fs';

const PATCHES = [
  {
    // axios builds a fetch adapter when imported, touching fetch and Request: in Node those are
    // lazy getters that load undici (~10 ms per run). ceso uses the http adapter.
    file: /axios[\\/]lib[\\/]adapters[\\/]fetch\.js$/,
    find: /const adapter = getFetch\(\);\s*export default adapter;/,
    replace: '',
  },
  {
    // axios reads globalThis.FormData when imported (undici again); ceso sends no multipart bodies.
    file: /axios[\\/]lib[\\/]utils\.js$/,
    find: /const FormDataCtor = typeof G\.FormData !== 'undefined' \? G\.FormData : undefined;/,
    replace: 'const FormDataCtor = undefined;',
  },
  {
    // oclif sorts each plugin's command ids with localeCompare on every run; the first call loads
    // ICU's collation data (~7 ms). Command ids are ASCII, so code-unit order is the same order.
    file: /@oclif[\\/]core[\\/]lib[\\/]config[\\/]plugin\.js$/,
    find: /\.sort\(\(a, b\) => a\.id\.localeCompare\(b\.id\)\)/,
    replace: '.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))',
  },
];

export const dependencyPatches = {
  name: 'dependency-patches',
  setup(builder) {
    for (const patch of PATCHES) {
      builder.onLoad({ filter: patch.file }, (args) => {
        const source = readFileSync(args.path, 'utf8');
        if (!patch.find.test(source)) throw new Error(`${args.path} changed: review the patch for it in scripts/dependency-patches.mjs`);
        return { contents: source.replace(patch.find, patch.replace), loader: 'js' };
      });
    }
  },
};
