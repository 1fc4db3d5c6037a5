// Merges line coverage of the code the tests ran in-process (vitest's v8 coverage) with that of
// the CLI processes the integration tests started (raw NODE_V8_COVERAGE files), prints the
// summary and enforces the floor.
//
// The CLI runs as an esbuild bundle. Its V8 coverage is merged across processes per script
// (@bcoe/v8-coverage), then remapped through the bundle's source map to src/ with v8-to-istanbul.
// c8's report step, which does the same in principle, counted never-run functions of a bundle as
// covered (a run that failed before parsing anything showed the XML decoder 100% covered).
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mergeProcessCovs } from '@bcoe/v8-coverage';
import libCoverage from 'istanbul-lib-coverage';
import v8toIstanbul from 'v8-to-istanbul';

const MINIMUM_LINES = 80;
const root = fileURLToPath(new URL('..', import.meta.url));
const raw = join(root, 'coverage/raw');
// ES modules (dist/launcher.js) report file: URLs; the bundle, compiled by the launcher as a
// vm.Script, reports its path.
const distPath = `${join(root, 'dist')}/`;
const distUrl = `file://${distPath}`;
const pathOfScript = (url) => (url.startsWith(distUrl) ? fileURLToPath(url) : url.startsWith(distPath) ? url : undefined);
const srcPrefix = join(root, 'src') + '/';

// 1. The built CLI's scripts, from every process that ran it (vitest's own workers write here too).
const processes = [];
for (const name of existsSync(raw) ? readdirSync(raw) : []) {
  const data = JSON.parse(readFileSync(join(raw, name), 'utf8'));
  const result = data.result.filter((script) => pathOfScript(script.url) !== undefined);
  if (result.length > 0) processes.push({ result });
}
const merged = processes.length === 0 ? { result: [] } : mergeProcessCovs(processes);

// 2. Remapped to src/ through the bundle's source maps.
const map = libCoverage.createCoverageMap({});
for (const script of merged.result) {
  const path = pathOfScript(script.url);
  const mapPath = `${path}.map`;
  if (!existsSync(path) || !existsSync(mapPath)) continue;
  const converter = v8toIstanbul(path, 0, { source: readFileSync(path, 'utf8'), sourceMap: { sourcemap: JSON.parse(readFileSync(mapPath, 'utf8')) } });
  await converter.load();
  converter.applyCoverage(script.functions);
  for (const [file, coverage] of Object.entries(converter.toIstanbul())) {
    if (file.startsWith(srcPrefix)) map.merge({ [file]: coverage });
  }
}
writeFileSync(join(root, 'coverage/cli-coverage.json'), JSON.stringify(map.toJSON()));

// 3. Plus what the unit tests covered in-process.
const inProcess = join(root, 'coverage/in-process/coverage-final.json');
if (existsSync(inProcess)) map.merge(JSON.parse(readFileSync(inProcess, 'utf8')));
writeFileSync(join(root, 'coverage/coverage-final.json'), JSON.stringify(map.toJSON()));

const rows = map
  .files()
  .sort()
  .map((file) => {
    const { lines } = map.fileCoverageFor(file).toSummary();
    return [file.replace(root, ''), lines.covered, lines.total];
  });
const total = map.getCoverageSummary();
console.log(`\nLine coverage (unit tests in-process + ${processes.length} CLI processes):`);
for (const [file, covered, all] of rows) console.log(`  ${((100 * covered) / Math.max(all, 1)).toFixed(1).padStart(5)}%  ${file}`);
console.log(`Lines: ${total.lines.covered}/${total.lines.total} = ${total.lines.pct}% (floor ${MINIMUM_LINES}%)`);
if (total.lines.pct < MINIMUM_LINES) {
  console.error(`Line coverage ${total.lines.pct}% is below ${MINIMUM_LINES}%`);
  process.exit(1);
}
