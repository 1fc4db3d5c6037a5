/**
 * One SSH connection per invocation, opened on the first command: host key checked before any
 * credential is sent, auth by key file, else the SSH agent, else password. Every command returns
 * its stdout, stderr and exit status; callers check them (see run.ts).
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type * as NodeSshModule from 'node-ssh';
import type { NodeSSH } from 'node-ssh';
import { CesoError, connectionFailure, isCesoError } from '../core/errors.js';
import { logger } from '../core/log.js';
import type { SshEndpoint } from '../config/resolve.js';
import { HostKeyVerifier, keyTypeOf } from './host-keys.js';

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** The remote exit status; null when the command died on a signal. */
  code: number | null;
}

export interface ExecOptions {
  /** Sent to the command's standard input, then closed. */
  stdin?: string;
  /** Default 120 s; disk copies pass more. */
  timeoutMs?: number;
  onStdout?: (chunk: string) => void;
}

/** What the SSH path needs from a connection; tests of the ops may supply their own. */
export interface RemoteShell {
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
  close(): Promise<void>;
  readonly execCount: number;
}

/** Host key types ceso accepts, strongest first (the trust probe asks for the same). */
export const DEFAULT_HOST_KEY_ALGORITHMS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];

/**
 * node-ssh (and ssh2 under it) load from node_modules at run time, not from the bundle (they are
 * external in scripts/build.mjs: ssh2 carries optional native addons a bundler cannot inline),
 * and only when a command uses SSH.
 */
export async function loadNodeSsh(): Promise<typeof NodeSshModule> {
  return import('node-ssh');
}

export function expandHome(path: string, env: NodeJS.ProcessEnv = process.env): string {
  if (path === '~') return env.HOME ?? homedir();
  return path.startsWith('~/') ? join(env.HOME ?? homedir(), path.slice(2)) : path;
}

interface ChannelLike {
  close(): void;
  signal?(name: string): void;
}

interface ClientLike {
  on(event: 'error', listener: (error: Error) => void): unknown;
}

export class SshConnection implements RemoteShell {
  private ssh: NodeSSH | undefined;
  private opening: Promise<NodeSSH> | undefined;
  private lostWith: Error | undefined;
  execCount = 0;

  constructor(
    private readonly endpoint: SshEndpoint,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  get address(): string {
    return `${this.endpoint.user}@${this.endpoint.host}:${this.endpoint.port}`;
  }

  private connect(): Promise<NodeSSH> {
    this.opening ??= this.open().catch((error: unknown) => {
      this.opening = undefined;
      throw error;
    });
    return this.opening;
  }

  private async open(): Promise<NodeSSH> {
    const { host, port, user } = this.endpoint;
    const verifier = new HostKeyVerifier({
      host,
      port,
      knownHostsPath: expandHome(this.endpoint.knownHosts ?? '~/.ssh/known_hosts', this.env),
      ...(this.endpoint.hostKey === undefined ? {} : { hostKey: this.endpoint.hostKey }),
    });
    let refused: CesoError | undefined;
    const known = verifier.knownKeyTypes().flatMap((type) => (type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type]));
    const preferred = known.filter((type) => DEFAULT_HOST_KEY_ALGORITHMS.includes(type));
    const auth = this.authConfig();
    const { NodeSSH } = await loadNodeSsh();
    const ssh = new NodeSSH();
    const started = performance.now();
    try {
      await ssh.connect({
        host,
        port,
        username: user,
        readyTimeout: this.endpoint.connectTimeoutMs,
        algorithms: { serverHostKey: [...new Set([...preferred, ...DEFAULT_HOST_KEY_ALGORITHMS])] },
        hostVerifier: (key: Buffer) => {
          const verdict = verifier.verify(key);
          if (verdict.trusted) return true;
          refused = verifier.refusal(verdict, keyTypeOf(key));
          return false;
        },
        ...auth.config,
        authHandler: auth.methods,
      });
    } catch (error) {
      ssh.dispose();
      if (refused !== undefined) throw refused;
      throw this.connectError(error, auth.methods);
    }
    (ssh.connection as ClientLike | null)?.on('error', (error: Error) => {
      this.lostWith = error;
      logger().debug({ err: error.message }, 'ssh connection error');
    });
    logger().debug({ host, port, user, ms: Math.round(performance.now() - started), auth: auth.methods }, 'ssh connected');
    this.ssh = ssh;
    return ssh;
  }

  private authConfig(): { config: Record<string, unknown>; methods: string[] } {
    const config: Record<string, unknown> = {};
    const methods: string[] = [];
    if (this.endpoint.keyPath !== undefined) {
      const path = expandHome(this.endpoint.keyPath, this.env);
      try {
        config.privateKey = readFileSync(path, 'utf8');
      } catch (error) {
        throw new CesoError('CONFIG_INVALID', `ssh.keyPath ${path}: cannot read the key (${(error as NodeJS.ErrnoException).code ?? String(error)})`, {
          hint: 'Point ssh.keyPath at a private key file, or remove it to use the SSH agent',
        });
      }
      methods.push('publickey');
    } else if (this.env.SSH_AUTH_SOCK !== undefined && this.env.SSH_AUTH_SOCK !== '') {
      config.agent = this.env.SSH_AUTH_SOCK;
      methods.push('agent');
    }
    if (this.endpoint.password !== undefined && this.endpoint.password !== '') {
      config.password = this.endpoint.password;
      config.tryKeyboard = true;
      methods.push('password', 'keyboard-interactive');
    }
    if (methods.length === 0) {
      throw new CesoError('AUTH_FAILED', `no SSH credentials for ${this.address}: no ssh.keyPath, no SSH agent ($SSH_AUTH_SOCK) and no ssh.password`, {
        hint: 'Set ssh.keyPath (a key in the host\'s /etc/ssh/keys-root/authorized_keys), start an SSH agent, or set ssh.password: ${ESXI_SSH_PASSWORD}',
      });
    }
    return { config, methods };
  }

  private connectError(error: unknown, methods: string[]): CesoError {
    if (isCesoError(error)) return error;
    const failure = error as (Error & { level?: string; code?: string }) | undefined;
    const message = failure?.message ?? String(error);
    if (failure?.level === 'client-authentication') {
      return new CesoError('AUTH_FAILED', `${this.address}: SSH authentication failed (tried ${methods.join(', ')})`, {
        hint: 'Check ssh.user and ssh.keyPath or ssh.password; on ESXi, root\'s keys live in /etc/ssh/keys-root/authorized_keys',
      });
    }
    if (/privateKey|private key|passphrase/i.test(message)) {
      return new CesoError('AUTH_FAILED', `ssh.keyPath: ${message}`, { hint: 'Use an unencrypted key, or load the key into an SSH agent and drop ssh.keyPath' });
    }
    const reason =
      connectionFailure(failure?.code) ??
      (failure?.level === 'client-timeout' ? `no SSH handshake within ${this.endpoint.connectTimeoutMs / 1000} s` : message);
    return new CesoError('HOST_UNREACHABLE', `${this.endpoint.host}:${this.endpoint.port}: SSH ${reason}`, {
      hint: 'Check ssh.host and ssh.port, and that SSH is enabled on the host (Host > Actions > Services > Enable Secure Shell)',
      details: { reason: failure?.code ?? failure?.level ?? 'network', via: 'ssh' },
    });
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const ssh = await this.connect();
    if (ssh.connection === null) {
      throw new CesoError('HOST_UNREACHABLE', `${this.address}: the SSH connection was lost${this.lostWith === undefined ? '' : ` (${this.lostWith.message})`}`, {
        hint: 'Run the command again; what ceso made before the loss is listed above',
      });
    }
    this.execCount += 1;
    const timeoutMs = options.timeoutMs ?? 120_000;
    const started = performance.now();
    let channel: ChannelLike | undefined;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        try {
          channel?.signal?.('KILL');
          channel?.close();
        } catch {
          // already closed
        }
        reject(
          new CesoError('TIMEOUT', `${this.address}: no end of the command within ${Math.round(timeoutMs / 1000)} s: ${firstLine(command)}`, {
            hint: 'The host may be overloaded; check it with the ESXi console',
          }),
        );
      }, timeoutMs);
    });
    try {
      const running = ssh.execCommand(command, {
        noTrim: true,
        ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
        onChannel: (opened: ChannelLike) => {
          channel = opened;
        },
        ...(options.onStdout === undefined ? {} : { onStdout: (chunk: Buffer) => options.onStdout?.(chunk.toString('utf8')) }),
      });
      running.catch(() => undefined); // settled after a timeout: already reported
      const result = await Promise.race([running, timedOut]);
      logger().debug(
        { ms: Math.round(performance.now() - started), code: result.code, bytes: result.stdout.length, command: firstLine(command).slice(0, 120) },
        'ssh exec',
      );
      return { stdout: result.stdout, stderr: result.stderr, code: result.code };
    } catch (error) {
      if (isCesoError(error)) throw error;
      throw new CesoError('HOST_UNREACHABLE', `${this.address}: SSH command failed: ${error instanceof Error ? error.message : String(error)}`, {
        hint: 'The SSH connection broke; run the command again',
        cause: error,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    const opening = this.opening;
    this.opening = undefined;
    if (opening === undefined) return;
    try {
      (await opening).dispose();
    } catch {
      // never opened
    }
  }
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0] ?? '';
}
