import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, found upwards from this module (also when bundled into .tmp/ by scripts/run-ts.mjs). */
export function repoRoot(from: string = import.meta.url): string {
  let directory = dirname(fileURLToPath(from));
  while (!existsSync(join(directory, 'package.json')) || !existsSync(join(directory, 'test', 'testbed'))) {
    const parent = dirname(directory);
    if (parent === directory) throw new Error(`no ceso repository above ${fileURLToPath(from)}`);
    directory = parent;
  }
  return directory;
}
