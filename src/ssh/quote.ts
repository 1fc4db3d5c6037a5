/**
 * Shell quoting for commands run on the host's POSIX shell (busybox ash on ESXi).
 *
 * Every argument ceso puts in a remote command goes through `quote`: wrapped in single quotes,
 * inside which the shell expands nothing ($, `, \, ", globs, spaces and parentheses are literal);
 * a single quote itself is closed, escaped and reopened (`'` -> `'\''`). NUL cannot be passed
 * to a program at all and is refused.
 */
import { CesoError } from '../core/errors.js';

export function quote(value: string): string {
  if (value.includes('\0')) throw new CesoError('INVALID_INPUT', 'a value holds a NUL character, which no shell argument can carry');
  return `'${value.replaceAll("'", `'\\''`)}'`;
}
