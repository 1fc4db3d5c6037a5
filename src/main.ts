import { execute, settings } from '@oclif/core';

export { COMMANDS } from './commands/index.js';
export { default as commandNotFound } from './hooks/command-not-found.js';

/** The CLI's entry: bundled with the commands so one copy of oclif serves both. */
export async function main(): Promise<void> {
  // ceso ships compiled JavaScript only. Without this, oclif looks for a TypeScript setup
  // whenever a tsconfig.json is near (a checkout), which cost ~15-20 ms per run.
  settings.enableAutoTranspile = false;
  await execute({ dir: new URL('../bin/run.js', import.meta.url).href });
}
