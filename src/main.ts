import { execute } from '@oclif/core';

/** The CLI's entry: bundled with the commands so one copy of oclif serves both. */
export async function main(): Promise<void> {
  await execute({ dir: new URL('../bin/run.js', import.meta.url).href });
}
