/**
 * Runs a command on the host and checks it: vim-cmd's exit status is not reliable across ESXi
 * versions, so its output is searched for a `(vim.fault.X)` / `(vmodl.fault.X)` fault as well;
 * a fault becomes the same CesoError the API path raises for that fault type.
 */
import { CesoError } from '../core/errors.js';
import { hostFaultError } from '../core/faults.js';
import type { ExecOptions, ExecResult, RemoteShell } from './connection.js';
import { isBareUnset, parseFault, type VimFault } from './parse.js';

export interface RunOptions extends ExecOptions {
  /** What the command does, for messages: "power on web1". */
  what: string;
  /** Faults (by type) to hand back instead of throwing. */
  tolerate?: readonly string[];
}

export interface CheckedResult extends ExecResult {
  fault: VimFault | null;
}

/** The CesoError for a fault printed by vim-cmd: same code and message as over the API. */
export function faultError(fault: VimFault, what: string): CesoError {
  return hostFaultError({ type: fault.type, message: fault.message || fault.type, method: what }, what);
}

/** vim-cmd could not reach hostd on the host itself. */
function hostdDown(output: string): boolean {
  const first = output.split('\n', 1)[0] ?? '';
  return /^(Failed to login|Connection failed|Connection refused|failed to connect to hostd)/i.test(first.trim()) || isBareUnset(output);
}

export function checkOutput(result: ExecResult, command: string, options: Pick<RunOptions, 'what' | 'tolerate'>): CheckedResult {
  const text = `${result.stdout}\n${result.stderr}`;
  const fault = parseFault(text);
  if (fault !== null) {
    if (options.tolerate?.includes(fault.type)) return { ...result, fault };
    throw faultError(fault, options.what);
  }
  if (result.code === 127 && /not found/i.test(text)) {
    throw new CesoError('NOT_SUPPORTED', `${options.what}: the SSH host has no ${command.split(' ', 1)[0]}: it is not an ESXi shell`, {
      hint: 'Point ssh.host at the ESXi host itself, or use --via api',
    });
  }
  if (command.startsWith('vim-cmd') && hostdDown(text.trim())) {
    throw new CesoError('HOST_UNREACHABLE', `${options.what}: vim-cmd cannot reach hostd on the host (${firstLines(text)})`, {
      hint: 'hostd is restarting or stalled on the host; wait a minute, or restart it there (/etc/init.d/hostd restart)',
      details: { reason: 'hostd' },
    });
  }
  if (result.code !== 0) {
    throw new CesoError('HOST_FAULT', `${options.what}: exit status ${result.code ?? 'signal'}: ${firstLines(text) || '(no output)'}`, {
      details: { command, exitCode: result.code, stdout: result.stdout.slice(0, 2000), stderr: result.stderr.slice(0, 2000) },
    });
  }
  return { ...result, fault: null };
}

export async function run(shell: RemoteShell, command: string, options: RunOptions): Promise<CheckedResult> {
  const { what, tolerate, ...exec } = options;
  const result = await shell.exec(command, exec);
  return checkOutput(result, command, { what, ...(tolerate === undefined ? {} : { tolerate }) });
}

export function firstLines(text: string, count = 3): string {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .slice(0, count)
    .join(' / ');
}
