// cloud-init's own code as a test oracle for what ceso writes into guestinfo.
//
// checkWithCloudInit() runs test/support/cloudinit_check.py with Debian's /usr/bin/python3 and
// Debian's cloud-init package unpacked by scripts/setup.sh into test/.cache/cloud-init/ (never
// installed): cloud-init's VMware datasource reads the extraConfig through its environment-variable
// transport, its user-data processor and part handlers split and merge the user data, its schema
// validates every cloud-config, its network-state parser and netplan renderer read the network
// config, and Debian's `netplan generate` turns the result into systemd-networkd units.
//
// extraConfigFromVmx()/vmxExtraConfig() read a VM's extraConfig straight from the .vmx file the
// simulator keeps on disk; the oracle (sim.oracle('vm', NAME).extraConfig) is the other way.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { repoRoot } from './root.js';

const ROOT = repoRoot();
export const CLOUDINIT_ROOT = join(ROOT, 'test/.cache/cloud-init');
export const CLOUDINIT_PYTHONPATH = join(CLOUDINIT_ROOT, 'usr/lib/python3/dist-packages');
export const CLOUDINIT_CHECKER = join(ROOT, 'test/support/cloudinit_check.py');
/** Debian's python3, with Debian's python3-yaml, -jinja2, -jsonschema...: not a pyenv one on PATH. */
export const DEBIAN_PYTHON = '/usr/bin/python3';
const CHECK_TIMEOUT_MS = 30_000;

export interface SchemaProblem {
  /** The part's filename (`part-001`, or the MIME filename) or `merged`. */
  source: string;
  path: string;
  message: string;
}

export interface UserDataPart {
  contentType: string;
  filename: string | null;
  mergeType: string | null;
  content: string | null;
}

export interface CloudInitCheck {
  /** cloud-init's own version string (22.4.2 for Debian 12). */
  cloudInitVersion: string;
  /** The Debian package version unpacked (e.g. 22.4.2-1+deb12u4). */
  cloudInitPackage: string | null;
  cloudInitPath: string;
  python: string;
  netplanVersion: string | null;
  /** Environment variable -> the guestinfo key it carried (VMX_GUESTINFO_METADATA -> guestinfo.metadata). */
  envVars: Record<string, string>;
  datasource: {
    ok: boolean;
    dsname?: string;
    accessMethod?: string;
    subplatform?: string;
    instanceId?: string;
    /** DataSource.get_hostname(): from metadata local-hostname. */
    localHostname?: string;
    localFqdn?: string;
    /** What cc_set_hostname would set: merged cloud-config hostname/fqdn, else metadata. */
    hostname?: string;
    fqdn?: string;
  };
  /** The datasource's metadata (network moved under network.config, as cloud-init does). */
  metadata: Record<string, unknown> | null;
  userdataRaw: string | null;
  vendordataRaw: string | null;
  /** The user data's parts after cloud-init's UserDataProcessor (includes resolved, multipart split). */
  parts: UserDataPart[];
  /** Every #include URL cloud-init asked for; only loopback ones are fetched. */
  includes: Array<{ url: string; fetched: boolean; code?: number; error?: string }>;
  /** cloud-config.txt as cloud-init's cloud-config part handler merged it (merge_how / Merge-Type). */
  mergedCloudConfig: Record<string, unknown> | null;
  runcmd: unknown[] | null;
  /** scripts/runcmd as cc_runcmd writes it. */
  runcmdScript: string | null;
  /** The per-instance scripts/ directory: user scripts and runcmd (run in name order by scripts-user). */
  scripts: Record<string, string>;
  /** Boothooks as cloud-init writes them (never run by the checker). */
  boothooks: Record<string, string>;
  /** validate_cloudconfig_schema(strict=True) errors, per cloud-config part and for the merge. */
  schemaErrors: SchemaProblem[];
  schemaDeprecations: SchemaProblem[];
  /** Top-level keys no module of cloud-init's schema knows (22.4's schema itself allows them). */
  unknownKeys: Array<{ source: string; key: string }>;
  networkSource: 'metadata' | 'fallback' | null;
  networkConfig: Record<string, unknown> | null;
  /** parse_net_config_data(cfg, skip_broken=False): the strict parse non-netplan renderers and cloud-init < 22.4 do. */
  networkParse: { ok: boolean; error?: string; state?: unknown } | null;
  /** What the netplan renderer writes to /etc/netplan/50-cloud-init.yaml. */
  netplanYaml: string | null;
  /** `netplan generate --root-dir` on that file; files it generated (run/systemd/network/...). */
  netplanGenerate: { ok: boolean; exitCode: number | null; stderr: string; files: Record<string, string> } | null;
  /** cloud-init's WARNING log lines. */
  warnings: string[];
  /** Every stage that failed, `stage: Exception: message`. */
  errors: string[];
}

export function cloudInitAvailable(): boolean {
  return existsSync(join(CLOUDINIT_PYTHONPATH, 'cloudinit/version.py')) && existsSync(DEBIAN_PYTHON);
}

function requireCloudInit(): void {
  if (!cloudInitAvailable()) {
    throw new Error(`cloud-init is not unpacked in ${CLOUDINIT_ROOT} (or ${DEBIAN_PYTHON} is missing): run bash scripts/setup.sh`);
  }
}

/** Runs cloud-init's own datasource, user-data, schema and network code (and netplan) on a VM's extraConfig. */
export function checkWithCloudInit(extraConfig: Record<string, string>, options: { timeoutMs?: number } = {}): Promise<CloudInitCheck> {
  requireCloudInit();
  const timeoutMs = options.timeoutMs ?? CHECK_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', PYTHONPATH: CLOUDINIT_PYTHONPATH, PYTHONDONTWRITEBYTECODE: '1' };
    if (process.env['CLOUDINIT_CHECK_DEBUG']) env['CLOUDINIT_CHECK_DEBUG'] = '1';
    const child = spawn(DEBIAN_PYTHON, [CLOUDINIT_CHECKER], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`cloudinit_check.py did not finish within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) {
        reject(new Error(`cloudinit_check.py failed (exit ${code}):\n${stderr}`));
        return;
      }
      try {
        resolve(JSON.parse(stdout) as CloudInitCheck);
      } catch {
        reject(new Error(`cloudinit_check.py printed no JSON:\n${stdout}\n${stderr}`));
      }
    });
    child.stdin.end(JSON.stringify({ extraConfig }));
  });
}

/** Decodes a .vmx value: `|XX` (two hex digits) is that byte (`|22` is `"`, `|7C` is `|`, `|0A` newline). */
export function decodeVmxValue(value: string): string {
  if (!value.includes('|')) return value;
  const bytes: number[] = [];
  const raw = Buffer.from(value, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    const hex = raw.subarray(i + 1, i + 3).toString('latin1');
    if (raw[i] === 0x7c && i + 2 < raw.length && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(raw[i] ?? 0);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Parses a .vmx file's text: `key = "value"` lines (comments and other lines ignored); the last duplicate wins. */
export function parseVmx(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const rawLine of text.split('\n')) {
    const match = /^(.+?)\s*=\s*"(.*)"\s*$/.exec(rawLine.replace(/\r$/, ''));
    if (match === null) continue;
    const key = (match[1] ?? '').trim();
    if (key === '' || key.startsWith('#')) continue;
    result[key] = decodeVmxValue(match[2] ?? '');
  }
  return result;
}

/** The extraConfig-style keys of a .vmx (every `guestinfo.*` and other key), read from disk. */
export function extraConfigFromVmx(vmxFile: string): Record<string, string> {
  return parseVmx(readFileSync(vmxFile, 'utf8'));
}

/** `[datastore1] web1/web1.vmx` -> the file under the simulator's volumes root. */
export function vmxFileOnDisk(volumesRoot: string, datastorePath: string): string {
  const match = /^\[([^\]]+)\]\s*(.+)$/.exec(datastorePath);
  if (match === null) throw new Error(`not a datastore path: ${datastorePath}`);
  return join(volumesRoot, match[1] ?? '', match[2] ?? '');
}

/** Only the guestinfo.* keys, the ones cloud-init's VMware datasource may read. */
export function guestinfoKeys(extraConfig: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(extraConfig).filter(([key]) => key.toLowerCase().startsWith('guestinfo.')));
}

export interface LoopbackServer {
  /** http://127.0.0.1:PORT */
  url: string;
  /** Paths requested so far. */
  requests: string[];
  close(): Promise<void>;
}

/** A loopback HTTP server serving fixed documents (for #include user data). */
export async function serveOnLoopback(files: Record<string, string>): Promise<LoopbackServer> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    requests.push(path);
    const body = files[path];
    if (body === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Everything cloud-init (or netplan) objected to, as readable lines: an empty list means cloud-init
 * 22.4's datasource read the guestinfo, every cloud-config part and the merge pass the strict schema
 * with no unknown key, the network parses strictly and `netplan generate` accepts it.
 */
export function cloudInitProblems(check: CloudInitCheck): string[] {
  const problems: string[] = [...check.errors];
  if (!check.datasource.ok) problems.push('datasource: get_data() found nothing');
  for (const p of check.schemaErrors) problems.push(`schema ${p.source}: ${p.path}: ${p.message}`);
  for (const p of check.schemaDeprecations) problems.push(`schema deprecation ${p.source}: ${p.path}: ${p.message}`);
  for (const u of check.unknownKeys) problems.push(`schema ${u.source}: unknown top-level key ${u.key}`);
  for (const w of check.warnings) problems.push(`cloud-init warning: ${w}`);
  const reported = (stage: string): boolean => check.errors.some((error) => error.startsWith(`${stage}:`));
  if (check.networkParse !== null && !check.networkParse.ok && !reported('network.parse')) problems.push(`network.parse: ${check.networkParse.error ?? ''}`);
  if (check.netplanGenerate === null) {
    if (!reported('network.render')) problems.push('netplan.generate: did not run');
  } else if (!check.netplanGenerate.ok && !reported('netplan.generate')) {
    problems.push(`netplan.generate: ${check.netplanGenerate.stderr}`);
  }
  return problems;
}

/** The systemd-networkd .network unit `netplan generate` wrote for a netplan id. */
export function networkdUnit(check: CloudInitCheck, id = 'nic0'): string | undefined {
  return check.netplanGenerate?.files[`run/systemd/network/10-netplan-${id}.network`];
}
