// The test bed's vSphere endpoint for integration tests: test/testbed/bin/vcsim (govmomi's
// vcsim with the corrections listed in test/testbed/go/src/cesotestbed/cmd/vcsim/main.go)
// started on 127.0.0.1 with all its state in a fresh temp dir, plus the oracle (an independent
// govmomi reader) and the simulator's control API (fault injection, delays, datastore space).
//
// The simulator's stdin is a pipe this process holds open: when the test process dies, the
// pipe closes and the simulator exits, so it never outlives the tests. stop() kills it, waits
// for it, and removes its temp dir. The password goes through the environment, never argv.
// Its stderr goes to a file (DIR/vcsim.log), not a pipe: a pipe this process does not drain in
// time (a benchmark blocked in spawnSync) fills up, and the simulator then stalls in a log write
// while it holds a VM's lock, so every later call on that VM hangs.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { repoRoot } from './root.js';

export interface SimulatorOptions {
  mode?: 'esx' | 'vpx';
  vms?: number;
  user?: string;
  password?: string;
  template?: string | null;
  datastoreCapacityGB?: number;
  datastoreFreeGB?: number;
}

export type ControlPath = 'fail' | 'reset' | 'datastore' | 'delay' | 'expire-sessions' | 'nfc' | 'keyed-paths' | 'property-requests' | 'extra-config';

/** One RetrieveProperties(Ex) call the simulator answered (GET /testbed/property-requests). */
export interface PropertyRequest {
  method: string;
  /** Managed object type -> the paths asked ("*" for all). */
  paths: Record<string, string[]>;
  responseBytes: number;
}

export interface Simulator {
  url: string;
  host: string;
  port: number;
  /** "127.0.0.1:PORT" */
  hostPort: string;
  user: string;
  password: string;
  mode: 'esx' | 'vpx';
  apiType: string;
  thumbprintSha1: string;
  thumbprintSha256: string;
  dir: string;
  datastoreDir: string;
  /** DIR/volumes: plays the role of /vmfs/volumes. */
  volumesRoot: string;
  template: string | null;
  vms: number;
  /** The simulator's process id. */
  pid: number;
  /** Runs the oracle with this simulator's URL and credentials and parses its JSON output. */
  oracle<T = unknown>(...args: string[]): Promise<T>;
  /**
   * The control API:
   * - fail `{method, fault, times?=1 (-1: always), immediate?, vm?, message?, props?}`: the next
   *   calls of method answer fault (a *_Task method returns a Task that ends in error, unless
   *   immediate)
   * - delay `{method, ms}`: slows method (a *_Task returns at once, its Task runs ms);
   *   method "guest.ipAddress" delays guest IPs after boot; method "guest.ready" is how long after
   *   the IP the guest reports guestinfo.ceso.ready (default 500 ms; reset restores it)
   * - datastore `{capacityGB?, freeGB?}` (the free space now; NFC uploads use it up);
   *   expire-sessions; reset (clears faults and delays, restores the datastore's space and the
   *   NFC defaults)
   * - nfc `{leaseTimeoutSeconds?, initializingMs?}`: for HttpNfcLeases made afterwards (defaults
   *   300 s and 200 ms). GET https://HOST/testbed/nfc (no authentication) reports every lease:
   *   `{leaseTimeoutSeconds, initializingMs, usedBytes, leases: [{id, state, vm, vmName, error,
   *   timedOut, leaseTimeoutSeconds, progressCalls, percent, uploadsInFlight,
   *   files: [{name, disk, capacityBytes, bytesReceived, bytesWritten, uploads, status}]}]}`
   * - keyed-paths `{mode: "support" | "refuse" | "legacy"}`: keyed property paths such as
   *   config.extraConfig["k"] answered as a real host does (the default), with the fault
   *   InvalidProperty (a host that refuses them), or as vcsim 0.24.2 (missingSet entries)
   * - extra-config `{vms?: [name], set?: {key: value}, random?: {key: length}}`: sets extraConfig
   *   keys on the VMs named (none: every VM); random = base64 text of that length, new per VM
   * - property-requests: forgets the recorded RetrieveProperties(Ex) calls (see propertyRequests)
   */
  control(path: ControlPath, body?: object): Promise<void>;
  /** The last 200 RetrieveProperties(Ex) calls, oldest first (reset and property-requests clear them). */
  propertyRequests(): Promise<PropertyRequest[]>;
  /** Every file under datastoreDir, relative to it, sorted. */
  listFiles(): Promise<string[]>;
  /** The simulator's stderr so far, its last 256 KB (DIR/vcsim.log; for diagnostics). */
  logs(): string;
  /** Kills the simulator (and waits for it), removes its directory. Idempotent. */
  stop(): Promise<void>;
}

export const TESTBED_BIN: string = path.join(repoRoot(), 'test/testbed/bin');
export const DEFAULT_PASSWORD = 'S3cret-pw!';
const VCSIM = path.join(TESTBED_BIN, 'vcsim');
const ORACLE = path.join(TESTBED_BIN, 'oracle');
const START_TIMEOUT_MS = 30_000;
const ORACLE_TIMEOUT_MS = 60_000;

interface StartLine {
  url: string;
  host: string;
  port: number;
  user: string;
  mode: 'esx' | 'vpx';
  apiType: string;
  thumbprintSha1: string;
  thumbprintSha256: string;
  datastores: Record<string, string>;
  template: string | null;
  vms: number;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    if (!(await waitForExit(child, 5_000))) {
      child.kill('SIGKILL');
      await waitForExit(child, 5_000);
    }
  }
  running.delete(child);
}

async function walk(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(path.join(root, rel), { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const p = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) out.push(...(await walk(root, p)));
    else out.push(p);
  }
  return out;
}

export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const mode = opts.mode ?? 'esx';
  const user = opts.user ?? 'root';
  const password = opts.password ?? DEFAULT_PASSWORD;
  const template = opts.template === undefined ? 'ubuntu-22.04-template' : opts.template;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ceso-sim-'));
  const args = [
    '--mode', mode,
    '--vms', String(opts.vms ?? 2),
    '--listen', '127.0.0.1:0',
    '--user', user,
    '--dir', dir,
    '--template', template ?? '',
    '--datastore-capacity-gb', String(opts.datastoreCapacityGB ?? 1000),
    '--datastore-free-gb', String(opts.datastoreFreeGB ?? 900),
  ];
  installExitHook();
  const logFile = path.join(dir, 'vcsim.log');
  const logFd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(VCSIM, args, {
      stdio: ['pipe', 'pipe', process.env['CESO_SIM_DEBUG'] ? 'inherit' : logFd],
      env: { ...process.env, VCSIM_PASSWORD: password },
    });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  } finally {
    closeSync(logFd);
  }
  running.add(child);
  /** The last `max` characters of the simulator's log. */
  const readLog = (max = 256_000): string => {
    try {
      return readFileSync(logFile, 'utf8').slice(-max);
    } catch {
      return ''; // removed by stop()
    }
  };

  let info: StartLine;
  try {
    info = await new Promise<StartLine>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => fail(new Error(`simulator did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        reject(new Error(`${err.message}\n--- simulator stderr ---\n${readLog(4000)}`));
      };
      child.once('error', fail);
      child.once('exit', (code, sig) => fail(new Error(`simulator exited (${code ?? sig}) before it was ready`)));
      child.stdout?.setEncoding('utf8');
      child.stdout?.on('data', (d: string) => {
        buf += d;
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        child.removeAllListeners('exit');
        try {
          resolve(JSON.parse(buf.slice(0, nl)) as StartLine);
        } catch (err) {
          reject(new Error(`bad start line from the simulator: ${buf.slice(0, nl)} (${String(err)})`));
        }
      });
    });
  } catch (err) {
    await kill(child);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  child.stdout?.resume();

  const datastoreDir = info.datastores['datastore1'] ?? path.join(dir, 'volumes', 'datastore1');
  let stopped = false;

  /** One call of the control API (pinned to the simulator's certificate): the response's text. */
  const controlRequest = (method: 'GET' | 'POST', controlPath: ControlPath, body: object = {}): Promise<string> => {
    const payload = method === 'POST' ? JSON.stringify(body) : '';
    return new Promise<string>((resolve, reject) => {
      const req = https.request(
        {
          host: info.host,
          port: info.port,
          path: `/testbed/${controlPath}`,
          method,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
          rejectUnauthorized: false, // pinned below
          agent: false,
          timeout: 30_000,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => {
            if ((res.statusCode ?? 500) >= 300) reject(new Error(`control ${controlPath}: HTTP ${res.statusCode}: ${text}`));
            else resolve(text);
          });
        },
      );
      req.on('socket', (sock) => {
        sock.once('secureConnect', () => {
          const fp = (sock as TLSSocket).getPeerCertificate().fingerprint256;
          if (fp !== info.thumbprintSha256) req.destroy(new Error(`control: unexpected certificate ${fp}`));
        });
      });
      req.on('timeout', () => req.destroy(new Error(`control ${controlPath}: timeout`)));
      req.on('error', reject);
      req.end(payload);
    });
  };
  const sim: Simulator = {
    url: info.url,
    host: info.host,
    port: info.port,
    hostPort: `${info.host}:${info.port}`,
    user,
    password,
    mode: info.mode,
    apiType: info.apiType,
    thumbprintSha1: info.thumbprintSha1,
    thumbprintSha256: info.thumbprintSha256,
    dir,
    datastoreDir,
    volumesRoot: path.dirname(datastoreDir),
    template: info.template,
    vms: info.vms,
    pid: child.pid ?? -1,
    async oracle<T = unknown>(...oracleArgs: string[]): Promise<T> {
      const stdout = await new Promise<string>((resolve, reject) => {
        execFile(
          ORACLE,
          ['--url', info.url, '--user', user, '--thumbprint', info.thumbprintSha1, ...oracleArgs],
          { env: { ...process.env, ORACLE_PASSWORD: password }, timeout: ORACLE_TIMEOUT_MS, maxBuffer: 256 * 1024 * 1024 },
          (err, out, errOut) => {
            if (err) reject(new Error(`oracle ${oracleArgs.join(' ')} failed: ${err.message}\n${errOut}`));
            else resolve(out);
          },
        );
      });
      return JSON.parse(stdout) as T;
    },
    async control(controlPath: ControlPath, body: object = {}): Promise<void> {
      await controlRequest('POST', controlPath, body);
    },
    async propertyRequests(): Promise<PropertyRequest[]> {
      return JSON.parse(await controlRequest('GET', 'property-requests')) as PropertyRequest[];
    },
    async listFiles(): Promise<string[]> {
      return (await walk(datastoreDir)).sort();
    },
    logs(): string {
      return readLog();
    },
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      await kill(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return sim;
}
