import type { Hook } from '@oclif/core';
import { CesoError } from '../core/errors.js';

/** An unknown command is a usage error (exit 2), answered as one JSON document under --json. */
const hook: Hook<'command_not_found'> = async function (options) {
  const known = options.config.commands.filter((command) => !command.hidden).map((command) => command.id.replace(/:/g, ' '));
  const asked = options.id.replace(/:/g, ' ');
  const close = known.filter((id) => id.startsWith(asked.split(' ')[0] ?? '')).slice(0, 8);
  const error = new CesoError('INVALID_INPUT', `"${asked}" is not a ceso command`, {
    hint: `Run "ceso --help" to list the commands${close.length > 0 ? `; did you mean one of: ${close.join(', ')}` : ''}`,
  });
  if ((options.argv ?? []).includes('--json')) process.stdout.write(`${JSON.stringify({ error: error.toJSON() }, null, 2)}\n`);
  else process.stderr.write(`Error: ${error.message}\nHint: ${error.hint}\n`);
  process.exit(error.exitCode);
};

export default hook;
