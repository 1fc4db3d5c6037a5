/**
 * The Prometheus text exposition format (version 0.0.4), written by hand: ceso renders one
 * complete snapshot per run from values it already holds, so a client library's registries,
 * async collectors and default process metrics would add start-up weight and nothing else.
 * No timestamps: node_exporter's textfile collector skips a file that has them.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CesoError } from './errors.js';

export type MetricType = 'gauge' | 'counter' | 'histogram';

export interface MetricSample {
  /** The family's name, or for a histogram its _bucket, _sum or _count series. */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  type: MetricType;
  help: string;
  samples: MetricSample[];
}

/** Every family with its HELP and TYPE (also when it has no samples yet), its samples in order. */
export function renderExposition(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
    for (const sample of family.samples) lines.push(`${sample.name}${renderLabels(sample.labels)} ${formatValue(sample.value)}`);
  }
  return `${lines.join('\n')}\n`;
}

function renderLabels(labels: Record<string, string>): string {
  const pairs = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabelValue(value)}"`);
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`;
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/**
 * Writes `text` to `path` atomically for node_exporter's textfile collector: a temporary file in
 * the same directory (same filesystem, so the rename is atomic) whose name does not end in .prom
 * (the collector reads only *.prom), flushed, then renamed over `path`. A reader sees the old
 * file or the new one, never a part.
 */
export function writeTextfile(path: string, text: string): void {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(temporary, 'w', 0o644);
    writeSync(fd, text);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temporary, path);
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    rmSync(temporary, { force: true });
    const code = (error as NodeJS.ErrnoException).code;
    throw new CesoError('INVALID_INPUT', `--textfile ${path}: cannot write the metrics (${code ?? String(error)})`, {
      hint: 'Give a path in an existing directory ceso may write to, e.g. the directory of node_exporter’s --collector.textfile.directory',
    });
  }
}
