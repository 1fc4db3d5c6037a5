import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where ceso keeps its config, sessions, audit log, locks and compile cache: ~/.ceso, or CESO_HOME. */
export function cesoHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.CESO_HOME ?? join(homedir(), '.ceso');
}
