import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './root.js';
import { startSimulator, type Simulator, type SimulatorOptions } from './simulator.js';

export const ROOT = repoRoot();
export const CLI = join(ROOT, 'bin/run.js');
/** What `npm run build` makes and bin/run.js loads. */
export const BUNDLE = join(ROOT, 'dist/ceso.cjs');

export function requireBuiltCli(): void {
  if (!existsSync(BUNDLE)) throw new Error('build the CLI first: npm run build');
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (throws with the output when it is not exactly one JSON document). */
  json<T = unknown>(): T;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  input?: string;
  timeoutMs?: number;
  /** Called with the child once it is running (for signal tests). */
  onSpawn?: (child: ReturnType<typeof spawn>) => void;
}

/** The test process's environment without a developer's own CESO_* settings. */
function hermeticEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('CESO_')));
}

/** Runs the built CLI as a process, the way users do; bounded by a timeout. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...hermeticEnv(), NO_COLOR: '1', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ceso ${args.join(' ')} did not finish within ${options.timeoutMs ?? 60_000} ms\n${stderr}`));
    }, options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({
        code: code ?? -1,
        stdout,
        stderr,
        json<T>() {
          try {
            return JSON.parse(stdout) as T;
          } catch {
            throw new Error(`stdout is not one JSON document (exit ${code}):\n${stdout}\nstderr:\n${stderr}`);
          }
        },
      });
    });
    options.onSpawn?.(child);
    child.stdin.on('error', () => undefined); // a CLI that exits before reading its input: EPIPE, harmless
    child.stdin.end(options.input ?? '');
  });
}

export interface CesoWorkspace {
  home: string;
  configPath: string;
  env: Record<string, string>;
  writeConfig(yaml: string): string;
  cleanup(): void;
}

/** A private CESO_HOME and config file per test file, so no test touches ~/.ceso. */
export function workspace(): CesoWorkspace {
  const home = mkdtempSync(join(tmpdir(), 'ceso-home-'));
  const configPath = join(home, 'config.yaml');
  return {
    home,
    configPath,
    env: { CESO_HOME: home, CESO_CONFIG: configPath },
    writeConfig(yaml: string) {
      writeFileSync(configPath, yaml, { mode: 0o600 });
      return configPath;
    },
    cleanup() {
      rmSync(home, { recursive: true, force: true });
    },
  };
}

export function simulatorConfig(sim: { port: number; user: string; thumbprintSha256: string; template?: string | null }, extra = ''): string {
  return (
    `esxi:\n  host: 127.0.0.1:${sim.port}\n  user: ${sim.user}\n  password: \${SIM_PASSWORD}\n  thumbprint: "${sim.thumbprintSha256}"\n` +
    `defaults: {template: ${sim.template ?? 'ubuntu-22.04-template'}, datastore: datastore1, network: VM Network, cpu: 2, memory: 2, disk: 20}\n${extra}`
  );
}

/** A simulator and a workspace configured for it: the set-up most integration suites share. */
export interface SimulatorWorkspace {
  sim: Simulator;
  ws: CesoWorkspace;
  /** The workspace's environment plus the simulator's password, for runCli. */
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function openSimulatorWorkspace(options: SimulatorOptions = {}, extraConfig = ''): Promise<SimulatorWorkspace> {
  const sim = await startSimulator(options);
  const ws = workspace();
  ws.writeConfig(simulatorConfig(sim, extraConfig));
  return {
    sim,
    ws,
    env: { ...ws.env, SIM_PASSWORD: sim.password },
    async close() {
      await sim.stop();
      ws.cleanup();
    },
  };
}

/** A config for the simulator's API and the test bed's sshd, with overrides for either part. */
export function sshConfig(
  sim: { port: number; user: string; thumbprintSha256: string },
  sshd: { port: number; user: string; privateKeyPath: string; knownHostsPath: string; volumesRoot: string },
  ssh: Record<string, unknown> = {},
  esxi: Record<string, unknown> = {},
): string {
  const section = (entries: Record<string, unknown>): string =>
    Object.entries(entries)
      .map(([key, value]) => `  ${key}: ${JSON.stringify(value)}`)
      .join('\n');
  return [
    'esxi:',
    section({ host: `127.0.0.1:${sim.port}`, user: sim.user, password: '${SIM_PASSWORD}', thumbprint: sim.thumbprintSha256, ...esxi }),
    'ssh:',
    section({ host: '127.0.0.1', port: sshd.port, user: sshd.user, keyPath: sshd.privateKeyPath, knownHosts: sshd.knownHostsPath, volumesRoot: sshd.volumesRoot, ...ssh }),
    'defaults: {template: ubuntu-22.04-template, datastore: datastore1, network: VM Network, cpu: 2, memory: 2, disk: 20}',
    '',
  ].join('\n');
}

/** A result without what differs by path and run (`via`, `durationMs`), to compare the two paths. */
export function withoutPath(value: Record<string, unknown>): Record<string, unknown> {
  const { via: _via, durationMs: _duration, ...rest } = value;
  return rest;
}
