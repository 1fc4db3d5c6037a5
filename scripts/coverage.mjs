// Merges line coverage of the code the tests ran in-process (vitest's v8 coverage) with that of
// the CLI processes the integration tests started (raw NODE_V8_COVERAGE files, remapped by c8
// through the bundle's source maps to src/), prints the summary and enforces the floor.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import libCoverage from 'istanbul-lib-coverage';

const MINIMUM_LINES = 80;
const root = new URL('..', import.meta.url).pathname;
const raw = join(root, 'coverage/raw');
const cliOnly = join(root, 'coverage/cli-raw');
mkdirSync(cliOnly, { recursive: true });

// Keep only the scripts of the built CLI: vitest's own workers also write files here.
const distPrefix = `file://${join(root, 'dist')}/`;
let processes = 0;
for (const name of existsSync(raw) ? readdirSync(raw) : []) {
  const data = JSON.parse(readFileSync(join(raw, name), 'utf8'));
  const result = data.result.filter((script) => script.url.startsWith(distPrefix));
  if (result.length === 0) continue;
  processes += 1;
  writeFileSync(join(cliOnly, name), JSON.stringify({ ...data, result }));
}

execFileSync(
  join(root, 'node_modules/.bin/c8'),
  ['report', '--temp-directory', cliOnly, '--reports-dir', join(root, 'coverage/cli'), '--reporter', 'json', '--exclude-after-remap', '--include', 'src/**', '--all=false'],
  { cwd: root, stdio: 'inherit' },
);

const map = libCoverage.createCoverageMap({});
for (const file of ['coverage/in-process/coverage-final.json', 'coverage/cli/coverage-final.json']) {
  const path = join(root, file);
  if (existsSync(path)) map.merge(JSON.parse(readFileSync(path, 'utf8')));
}
writeFileSync(join(root, 'coverage/coverage-final.json'), JSON.stringify(map.toJSON()));

const rows = map.files().sort().map((file) => {
  const summary = map.fileCoverageFor(file).toSummary();
  return [file.replace(root, ''), summary.lines.covered, summary.lines.total];
});
const total = map.getCoverageSummary();
console.log('\nLine coverage (unit tests in-process + %d CLI processes):', processes);
for (const [file, covered, all] of rows) console.log(`  ${((100 * covered) / Math.max(all, 1)).toFixed(1).padStart(5)}%  ${file}`);
const percent = total.lines.pct;
console.log(`Lines: ${total.lines.covered}/${total.lines.total} = ${percent}% (floor ${MINIMUM_LINES}%)`);
if (percent < MINIMUM_LINES) {
  console.error(`Line coverage ${percent}% is below ${MINIMUM_LINES}%`);
  process.exit(1);
}
