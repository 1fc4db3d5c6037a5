// A real OpenSSH server on 127.0.0.1 whose PATH starts with the test bed's ESXi shell
// emulator (test/testbed/bin/vim-cmd, vmkfstools), wired to a running simulator, so that
// ceso's SSH fallback can be tested end to end: `ssh root@127.0.0.1 -p PORT 'vim-cmd
// vmsvc/getallvms'` lists the simulator's VMs, and VMs registered over SSH are seen by the
// SOAP API.
//
// How the emulator finds the simulator: the harness writes config.json (url, user, password,
// SHA-1 thumbprint, volumesRoot) into its temp dir and sshd_config `SetEnv`s
// CESO_TESTBED_CONFIG=<that file> and PATH=<test/testbed/bin>:<system PATH> for every
// session (SetEnv is applied after sshd's default PATH, so it wins). sftp is served by
// internal-sftp for clients that upload files that way.
//
// Root and non-root: as root sshd needs its privilege-separation directory /run/sshd
// (created here if missing) and may log in any user; the harness always logs in the user
// running the tests (os.userInfo()), with a fresh ed25519 key, and runs with UsePAM no.
// As a normal user sshd runs unprivileged (no privsep chroot, no /run/sshd needed) and can
// only log in that same user, which is exactly what the harness asks for; there it needs
// UsePAM yes, because without PAM Debian's sshd cannot read /etc/shadow and refuses the
// account as locked (checked: as uid 65534 the key is then accepted). StrictModes no lets
// keys live in a world-readable tmp dir.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync, chmodSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './root.js';

const execFileAsync = promisify(execFile);

export interface SshServer {
  host: '127.0.0.1';
  port: number;
  user: string;
  privateKeyPath: string;
  /** "SHA256:..." as `ssh-keygen -lf` prints it. */
  hostKeyFingerprint: string;
  /** A known_hosts file with the `[127.0.0.1]:PORT` entry of the host key. */
  knownHostsPath: string;
  volumesRoot: string;
  /** Path of the emulator's config file (what CESO_TESTBED_CONFIG names in sessions). */
  configPath: string;
  /** The harness's temp dir (keys, sshd_config, config.json); removed by stop(). */
  dir: string;
  /** The listening sshd's pid. */
  pid: number;
  /** Runs cmd through the system ssh client (for tests). */
  exec(cmd: string, opts?: { timeoutMs?: number; input?: string }): Promise<{ stdout: string; stderr: string; code: number }>;
  stop(): Promise<void>;
}

export interface StartSshServerOptions {
  sim: { url: string; user: string; password: string; thumbprintSha1: string; volumesRoot: string };
  /** Directory holding vim-cmd and vmkfstools (default: test/testbed/bin). */
  binDir?: string;
}

const SSHD = '/usr/sbin/sshd';
const DEFAULT_BIN = path.join(repoRoot(), 'test/testbed/bin');
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    // sshd speaks first: wait for its banner so we know it is really serving.
    sock.once('data', (d) => done(d.toString('latin1').startsWith('SSH-')));
    sock.once('error', () => done(false));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Descendants of pid (Linux /proc), deepest first. */
function descendants(pid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const children = new Map<number, number[]>();
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(rest[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(e));
      children.set(ppid, list);
    } catch {
      // process went away
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const c of children.get(p) ?? []) {
      walk(c);
      out.push(c);
    }
  };
  walk(pid);
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function startSshServer(opts: StartSshServerOptions): Promise<SshServer> {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} not found: install openssh-server`);
  const binDir = opts.binDir ?? DEFAULT_BIN;
  for (const b of ['vim-cmd', 'vmkfstools']) {
    if (!existsSync(path.join(binDir, b))) {
      throw new Error(`${path.join(binDir, b)} is missing: run test/testbed/build.sh first`);
    }
  }
  const user = os.userInfo().username;
  const isRoot = process.getuid?.() === 0;
  if (isRoot && !existsSync('/run/sshd')) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  const dir = await mkdtemp(path.join(os.tmpdir(), 'ceso-sshd-'));
  let child: ChildProcess | undefined;
  try {
    const hostKey = path.join(dir, 'ssh_host_ed25519_key');
    const userKey = path.join(dir, 'id_ed25519');
    await execFileAsync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ceso-testbed-host', '-f', hostKey]);
    await execFileAsync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ceso-testbed-user', '-f', userKey]);
    const authorizedKeys = path.join(dir, 'authorized_keys');
    writeFileSync(authorizedKeys, readFileSync(`${userKey}.pub`), { mode: 0o600 });
    chmodSync(userKey, 0o600);
    const { stdout: fp } = await execFileAsync('ssh-keygen', ['-lf', `${hostKey}.pub`]);
    const hostKeyFingerprint = fp.trim().split(/\s+/)[1] ?? '';
    if (!hostKeyFingerprint.startsWith('SHA256:')) throw new Error(`unexpected ssh-keygen -lf output: ${fp}`);

    const configPath = path.join(dir, 'config.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        url: opts.sim.url,
        user: opts.sim.user,
        password: opts.sim.password,
        thumbprint: opts.sim.thumbprintSha1,
        volumesRoot: opts.sim.volumesRoot,
      }),
      { mode: 0o600 },
    );

    const hostPub = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    const knownHostsPath = path.join(dir, 'known_hosts');
    const sshdConfig = path.join(dir, 'sshd_config');
    const logs: string[] = [];

    let port = 0;
    // A free port found now may be taken before sshd binds it: retry a few times.
    for (let attempt = 0; attempt < 3 && !child; attempt++) {
      port = await freePort();
      writeFileSync(knownHostsPath, `[127.0.0.1]:${port} ${hostPub}\n`);
      const q = (s: string): string => `"${s}"`;
      writeFileSync(
        sshdConfig,
        [
          `Port ${port}`,
          'ListenAddress 127.0.0.1',
          'AddressFamily inet',
          `HostKey ${q(hostKey)}`,
          `PidFile ${q(path.join(dir, 'sshd.pid'))}`,
          `AuthorizedKeysFile ${q(authorizedKeys)}`,
          'StrictModes no',
          // Root: no PAM (nothing from /etc needed). Non-root: Debian's sshd without PAM
          // cannot read /etc/shadow and then refuses every account as "locked"; with PAM
          // the account check goes through unix_chkpwd and key logins work.
          `UsePAM ${isRoot ? 'no' : 'yes'}`,
          'PubkeyAuthentication yes',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'PermitRootLogin prohibit-password',
          `AllowUsers ${user}`,
          'PermitUserEnvironment no',
          'UseDNS no',
          'PrintMotd no',
          'PrintLastLog no',
          'MaxStartups 50:30:100',
          'MaxSessions 50',
          'ClientAliveInterval 0',
          'LogLevel ERROR',
          `SetEnv ${q(`CESO_TESTBED_CONFIG=${configPath}`)} ${q(`PATH=${binDir}:${SYSTEM_PATH}`)}`,
          'Subsystem sftp internal-sftp',
          '',
        ].join('\n'),
      );
      const c = spawn(SSHD, ['-D', '-e', '-f', sshdConfig], { stdio: ['ignore', 'pipe', 'pipe'] });
      c.stdout?.on('data', (d: Buffer) => logs.push(d.toString()));
      c.stderr?.on('data', (d: Buffer) => logs.push(d.toString()));
      let exited = false;
      c.once('exit', () => {
        exited = true;
      });
      const deadline = Date.now() + 10_000;
      let up = false;
      while (Date.now() < deadline && !exited) {
        if (await canConnect(port)) {
          up = true;
          break;
        }
        await sleep(50);
      }
      if (up) {
        child = c;
        break;
      }
      if (!exited) c.kill('SIGKILL');
      if (attempt === 2 || !logs.join('').includes('Address already in use')) {
        throw new Error(`sshd did not start on 127.0.0.1:${port} within 10 s:\n${logs.join('')}`);
      }
    }
    const sshd = child;
    if (!sshd?.pid) throw new Error(`sshd did not start:\n${logs.join('')}`);
    const sshdPid = sshd.pid;

    const exec: SshServer['exec'] = (cmd, eopts) =>
      new Promise((resolve, reject) => {
        const args = [
          '-F', '/dev/null',
          '-i', userKey,
          '-p', String(port),
          '-o', 'BatchMode=yes',
          '-o', 'IdentitiesOnly=yes',
          '-o', 'StrictHostKeyChecking=yes',
          '-o', `UserKnownHostsFile=${knownHostsPath}`,
          '-o', 'GlobalKnownHostsFile=/dev/null',
          '-o', 'ConnectTimeout=10',
          '-o', 'LogLevel=ERROR',
          `${user}@127.0.0.1`,
          cmd,
        ];
        const p = spawn('ssh', args, { stdio: ['pipe', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => {
          p.kill('SIGKILL');
          reject(new Error(`ssh ${cmd} timed out after ${eopts?.timeoutMs ?? 60_000} ms\n${stderr}`));
        }, eopts?.timeoutMs ?? 60_000);
        p.once('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
        p.once('close', (code, signal) => {
          clearTimeout(timer);
          resolve({ stdout, stderr, code: code ?? (signal ? 128 : 255) });
        });
        p.stdin.on('error', () => undefined); // a command that never reads its input: EPIPE, harmless
        p.stdin.end(eopts?.input ?? '');
      });

    let stopped = false;
    const stop = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      // Per-connection sshd processes call setsid(): collect them before the listener goes.
      const kids = descendants(sshdPid);
      const exitedP = new Promise<void>((r) => {
        if (sshd.exitCode !== null || sshd.signalCode !== null) r();
        else sshd.once('exit', () => r());
      });
      for (const pid of [...kids, sshdPid]) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
      await Promise.race([exitedP, sleep(5_000)]);
      for (const pid of [...kids, sshdPid]) {
        if (alive(pid)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
      await rm(dir, { recursive: true, force: true });
    };

    return {
      host: '127.0.0.1',
      port,
      user,
      privateKeyPath: userKey,
      hostKeyFingerprint,
      knownHostsPath,
      volumesRoot: opts.sim.volumesRoot,
      configPath,
      dir,
      pid: sshdPid,
      exec,
      stop,
    };
  } catch (e) {
    if (child?.pid && alive(child.pid)) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
