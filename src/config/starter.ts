/**
 * The starter configuration `ceso config init` writes: config.example.yaml as shipped in the
 * package (read at run time from the package root, so the documented example and the starter
 * cannot drift), with a header that says how to go on.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CesoError } from '../core/errors.js';
import { writePrivateFile } from './permissions.js';

export const EXAMPLE_FILE = 'config.example.yaml';

const HEADER = [
  '# ceso configuration, written by `ceso config init`. Keep it private (mode 0600): it names your',
  '# hosts and may hold secrets. Next: fill in esxi.host (or the hosts: section), export the',
  '# password variable, run `ceso config validate`, then `ceso host trust --yes` to pin the host.',
];

/** The example's text with its "copy this file" paragraph replaced by the starter's header. */
export function starterConfig(exampleText: string): string {
  const lines = exampleText.split('\n');
  let first = 0;
  // The example opens with one paragraph about copying it; the rest is kept verbatim.
  while (first < lines.length && (lines[first] as string).startsWith('#') && (lines[first] as string).trim() !== '#') first += 1;
  return [...HEADER, ...lines.slice(first)].join('\n');
}

export function readExampleConfig(packageRoot: string): string {
  const path = join(packageRoot, EXAMPLE_FILE);
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new CesoError('INTERNAL', `${path}: cannot read the example configuration shipped with ceso (${(error as NodeJS.ErrnoException).code ?? String(error)})`, {
      hint: 'Reinstall ceso: the package ships config.example.yaml next to package.json',
    });
  }
}

/**
 * Writes text as a new private file (0600; a missing directory is made 0700). An existing file
 * is replaced only with force (atomically); otherwise CONFLICT and nothing is touched.
 */
export function writeStarterConfig(path: string, text: string, force: boolean): { overwritten: boolean } {
  if (existsSync(path)) {
    if (!force) {
      throw new CesoError('CONFLICT', `${path} already exists: not overwritten`, {
        hint: 'Edit it, check it with ceso config validate, or pass --force to replace it with the starter',
      });
    }
    writePrivateFile(path, text);
    return { overwritten: true };
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return writeStarterConfig(path, text, force);
    throw new CesoError('CONFIG_INVALID', `${path}: cannot create the file (${(error as NodeJS.ErrnoException).code ?? String(error)})`, {
      hint: 'Check the directory’s permissions, or choose another path with --config',
    });
  }
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  return { overwritten: false };
}
