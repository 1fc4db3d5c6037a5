// vitest globalSetup: builds the Go test bed (test/testbed/build.sh: the vcsim launcher, the
// oracle and the ESXi shell emulator) once per run. The build is skipped when nothing changed;
// the first one takes a minute or so.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export default function setup(): void {
  const script = path.resolve(here, '../testbed/build.sh');
  process.stderr.write('[testbed] bash test/testbed/build.sh\n');
  const started = Date.now();
  const res = spawnSync('bash', [script], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 15 * 60_000 });
  if (res.error) throw new Error(`test/testbed/build.sh could not run: ${res.error.message}`);
  if (res.status !== 0) throw new Error(`test/testbed/build.sh failed (exit ${res.status ?? res.signal}); see the output above`);
  process.stderr.write(`[testbed] ready in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}
