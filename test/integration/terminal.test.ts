import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli, openSimulatorWorkspace, type SimulatorWorkspace } from '../support/cli.js';
import { buildOva } from '../support/ova.js';
import type { Simulator } from '../support/simulator.js';

/** Runs ceso on a real pseudo-terminal (util-linux `script`), typing `input` into it. */
function onTerminal(args: string[], env: Record<string, string>, input: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const command = [process.execPath, CLI, ...args].map((part) => `'${part.replace(/'/g, `'\\''`)}'`).join(' ');
    const child = spawn('script', ['-qec', command, '/dev/null'], { env: { ...process.env, ...env, TERM: 'dumb' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (input !== '' && output.includes('Type "yes"')) {
        child.stdin.write(input);
        input = '';
      }
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no answer on the terminal:\n${output}`));
    }, 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, output });
    });
  });
}

describe('on a terminal, and secrets in plans', () => {
  let sim: Simulator;
  let bed: SimulatorWorkspace | undefined;
  let env: Record<string, string>;

  beforeAll(async () => {
    bed = await openSimulatorWorkspace({ mode: 'esx', vms: 1 });
    ({ sim, env } = bed);
  });
  afterAll(async () => {
    await bed?.close();
  });

  it('shows step progress on stderr while creating, and asks before deleting', async () => {
    const created = await onTerminal(['vm', 'create', 'tty1', '--no-power-on'], env, '');
    expect(created.code, created.output).toBe(0);
    expect(created.output).toMatch(/\[1\/\d\] make the folder \[datastore1\] tty1/);
    expect(created.output).toContain('copy [datastore1] ubuntu-22.04-template/');

    const declined = await onTerminal(['vm', 'delete', 'tty1'], env, 'no\n');
    expect(declined.output).toContain('This will destroy tty1');
    expect(declined.code).toBe(2);
    expect((await sim.oracle<Array<{ name: string }>>('list')).map((vm) => vm.name)).toContain('tty1');

    const confirmed = await onTerminal(['vm', 'delete', 'tty1'], env, 'yes\n');
    expect(confirmed.code, confirmed.output).toBe(0);
    expect(confirmed.output).toContain('Deleted tty1');
    expect((await sim.oracle<Array<{ name: string }>>('list')).map((vm) => vm.name)).not.toContain('tty1');
  });

  it('shows the import progress (bytes, rate, ETA) on a terminal, and only the result on stdout', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ceso-tty-ova-'));
    const fixture = await buildOva(dir, { capacityMiB: 64, dataMiB: 48, serialPort: false });
    const imported = await onTerminal(['template', 'import', fixture.ova, '--name', 'tty-tpl'], env, '');
    expect(imported.code, imported.output).toBe(0);
    expect(imported.output).toMatch(/\[2\/4\] upload the disk/);
    expect(imported.output).toMatch(/\d+%\s+[\d.]+\/[\d.]+ MB\s+[\d.]+ MB\/s\s+ETA \d+m\d\ds/);
    const piped = await runCli(['template', 'import', fixture.ova, '--name', 'tty-tpl2', '--json'], { env });
    expect(piped.code).toBe(0);
    expect(piped.stderr).not.toMatch(/MB\/s/);
    expect(piped.json<{ name: string }>().name).toBe('tty-tpl2');
    rmSync(dir, { recursive: true, force: true });
  });

  it('masks secrets from --user-data in plans, and never prints the host password', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ceso-secret-'));
    const file = join(dir, 'user-data.yaml');
    writeFileSync(
      file,
      '#cloud-config\nchpasswd:\n  users: [{name: ubuntu, password: "Hunter2-secret", type: text}]\nwrite_files:\n  - path: /etc/app/key.pem\n    content: |\n      -----BEGIN PRIVATE KEY-----\n      MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n      -----END PRIVATE KEY-----\n',
    );
    for (const json of [true, false]) {
      const result = await runCli(['vm', 'create', 'sec1', '--user-data', file, '--dry-run', ...(json ? ['--json'] : []), '--log-level', 'debug'], { env });
      expect(result.code, result.stdout).toBe(0);
      const everything = result.stdout + result.stderr;
      expect(everything).not.toContain('Hunter2-secret');
      expect(everything).not.toContain('MIIEvQIBADANBgkqhkiG9w0BAQEFAASC');
      expect(everything).not.toContain(sim.password);
      expect(everything).toContain('********');
    }
  });
});
