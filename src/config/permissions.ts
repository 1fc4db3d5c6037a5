/**
 * The configuration names hosts and may hold passwords: a file other users can read (or write)
 * gets one warning on stderr per process (never an error: the file still loads), and ceso writes
 * it only as a private file.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, realpathSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The warning for a config file that group or others may access, or null when it is private. */
export function configPermissionProblem(path: string): string | null {
  if (process.platform === 'win32') return null;
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch {
    return null;
  }
  if ((mode & 0o077) === 0) return null;
  const who = [mode & 0o070 ? 'group' : '', mode & 0o007 ? 'others' : ''].filter((part) => part !== '').join(' and ');
  return (
    `Warning: ${path} is accessible by ${who} (mode ${mode.toString(8).padStart(4, '0')}); ` +
    `it may hold secrets. Make it private: chmod 600 ${path}`
  );
}

const warned = new Set<string>();

/** Writes the warning to stderr, once per path and process. */
export function warnIfConfigShared(path: string, write: (text: string) => void = (text) => process.stderr.write(text)): void {
  if (warned.has(path)) return;
  warned.add(path);
  const problem = configPermissionProblem(path);
  if (problem !== null) write(`${problem}\n`);
}

/**
 * Replaces the file's content atomically (a temporary file in the same directory, then a
 * rename), mode 0600 whatever the old mode was. A symbolic link is followed, not replaced.
 * A missing directory is created 0700.
 */
export function writePrivateFile(path: string, text: string): void {
  let target = path;
  try {
    target = realpathSync(path);
  } catch {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  }
  const temporary = join(dirname(target), `.${randomBytes(6).toString('hex')}.ceso-tmp`);
  const fd = openSync(temporary, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temporary, { force: true });
    throw error;
  }
  closeSync(fd);
  try {
    chmodSync(temporary, 0o600);
    renameSync(temporary, target);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}
