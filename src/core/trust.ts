/**
 * `ceso host trust`: read the host's certificate (a bare TLS handshake) and SSH host key (a bare
 * key exchange) without sending any credential, compare them with the pins in the configuration,
 * and with `yes` pin them into the host's own section of the file (comments and layout kept,
 * mode 0600). A pin that differs from what the host shows now is refused unless `replace`.
 * The probes are given by the caller (src/esxi/soap/probe.ts, src/ssh/host-key-probe.ts), so
 * this module knows nothing of either transport.
 */
import { existsSync, readFileSync } from 'node:fs';
import { applyYamlEdits, readYamlValue, writePrivateFile, type YamlEdit, type YamlValue } from '../config/edit.js';
import { loadConfig } from '../config/load.js';
import { splitHostPort, type HostTarget } from '../config/resolve.js';
import type { EsxiConfig, SshConfig } from '../config/schema.js';
import type { CertificateProbe } from '../esxi/soap/probe.js';
import type { SshHostKey } from '../ssh/host-key-probe.js';
import { CesoError, isCesoError } from './errors.js';

export interface HostTrustResult {
  host: string;
  address: string;
  thumbprintSha256: string;
  thumbprintSha1: string;
  certificate: { subject: string; issuer: string; validFrom: string; validTo: string };
  sshHostKey: SshHostKey | null;
  /** Whether the configuration file now pins this certificate (and this SSH key, when it was read). */
  pinned: boolean;
  configPath: string;
}

type PinState = { kind: 'none' } | { kind: 'same' } | { kind: 'changed'; pinned: string };

const CHECK_ON_HOST = [
  'Check them on the host itself (ESXi Shell, or the DCUI for the certificate) before trusting them:',
  '  openssl x509 -noout -fingerprint -sha256 -in /etc/vmware/ssl/rui.crt',
  '  for f in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf "$f"; done',
];

export interface TrustRequest {
  /** Pin what was shown into the configuration file. */
  yes: boolean;
  /** With yes: replace a pin that differs from what the host shows now. */
  replace: boolean;
  /** --host and --config as given (the section to pin into is chosen as resolveTarget chose the host). */
  host?: string | undefined;
  config?: string | undefined;
  /** The CLI's name, for the command line suggested when nothing is pinned yet. */
  bin: string;
}

/** How to read what the host presents, without trusting it. */
export interface TrustProbes {
  certificate(host: string, port: number, timeoutMs: number): Promise<CertificateProbe>;
  sshHostKey(host: string, port: number, timeoutMs: number): Promise<SshHostKey>;
}

/**
 * Probes the host, reports what it saw (through `print`, before any pin is written or refused),
 * pins with `yes`, and returns the result `--json` prints. `env` is where CESO_HOST, CESO_USER
 * and CESO_THUMBPRINT are read from.
 */
export async function trustHost(
  target: HostTarget,
  request: TrustRequest,
  probes: TrustProbes,
  print: (text: string) => void,
  env: NodeJS.ProcessEnv = process.env,
): Promise<HostTrustResult> {
  if (request.replace && target.security.mode === 'restricted') {
    throw new CesoError('POLICY_DENIED', 'restricted mode refuses --replace: a changed certificate or host key is for an operator to accept (rule replace, value "--replace")', {
      hint: 'Ask an operator to check the host and run ceso host trust --replace in standard mode',
      details: { rule: 'replace', value: '--replace' },
    });
  }
  const [certificate, ssh] = await Promise.all([
    probes.certificate(target.api.host, target.api.port, target.api.connectTimeoutMs),
    probes.sshHostKey(target.ssh.host, target.ssh.port, target.ssh.connectTimeoutMs).then(
      (key) => ({ key, error: null }),
      (error: unknown) => ({ key: null, error: isCesoError(error) ? error.message : String(error) }),
    ),
  ]);

  const section = describeSection(target, request);
  const certState = pinState(section.thumbprint, (pin) => [certificate.thumbprintSha256, certificate.thumbprintSha1].includes(pin.toUpperCase()));
  const keyState: PinState | null = ssh.key === null ? null : pinState(section.hostKey, (pin) => pin.replace(/=+$/, '') === ssh.key?.fingerprint);

  print(renderProbe(target, certificate, ssh, certState, keyState, section));

  let pinned = certState.kind === 'same' && (keyState === null || keyState.kind === 'same');
  if (request.yes) {
    checkChanges(target, request, env, certificate, ssh.key, certState, keyState, section);
    const written = pin(target, env, certificate, ssh.key, certState, keyState, section);
    pinned = true;
    print(written);
  } else if (!pinned) {
    const again = [request.bin, 'host', 'trust', ...(request.host === undefined ? [] : ['--host', request.host]), '--yes', ...(hasChange(certState, keyState) ? ['--replace'] : [])];
    print(`\nNot pinned yet. To pin ${keyState === null ? 'the certificate' : 'them'} into ${target.configPath}:\n  ${again.join(' ')}`);
  }

  return {
    host: target.name,
    address: formatAddress(target.api.host, target.api.port),
    thumbprintSha256: certificate.thumbprintSha256,
    thumbprintSha1: certificate.thumbprintSha1,
    certificate: { subject: certificate.subject, issuer: certificate.issuer, validFrom: certificate.validFrom, validTo: certificate.validTo },
    sshHostKey: ssh.key,
    pinned,
    configPath: target.configPath,
  };
}

/** A pin that no longer matches is what pinning protects against: only --replace overrides it. */
function checkChanges(target: HostTarget, request: TrustRequest, env: NodeJS.ProcessEnv, certificate: CertificateProbe, key: SshHostKey | null, cert: PinState, hostKey: PinState | null, section: Section): void {
  const where = `${target.api.host}:${target.api.port}`;
  const envHost = env.CESO_HOST;
  if (envHost !== undefined && envHost !== '' && section.esxi?.host !== undefined && !sameAddress(envHost, section.esxi.host)) {
    throw new CesoError('CONFLICT', `CESO_HOST=${envHost} is not the host of ${section.label} (${section.esxi.host}) in ${target.configPath}: refusing to pin one host’s certificate to another`, {
      hint: 'Unset CESO_HOST to trust the host the file names, or point --config at another file',
    });
  }
  if (request.replace) return;
  const changes: string[] = [];
  if (cert.kind === 'changed') changes.push(`the certificate of ${where} has CHANGED: ${section.prefix}esxi.thumbprint pins ${cert.pinned}, the host now shows SHA-256 ${certificate.thumbprintSha256}`);
  if (hostKey?.kind === 'changed') changes.push(`the SSH host key of ${target.ssh.host}:${target.ssh.port} has CHANGED: ${section.sshPrefix}ssh.hostKey pins ${hostKey.pinned}, the host now shows ${key?.fingerprint ?? ''}`);
  if (changes.length === 0) return;
  throw new CesoError(cert.kind === 'changed' ? 'TLS_UNTRUSTED' : 'SSH_HOST_KEY_UNTRUSTED', `${changes.join('; ')}. Nothing was changed`, {
    hint: 'This is what a pin protects against: a man-in-the-middle, or a renewed certificate / reinstalled host. Check on the host, then run again with --replace',
    details: {
      host: target.name,
      ...(cert.kind === 'changed' ? { pinnedThumbprint: cert.pinned, thumbprintSha256: certificate.thumbprintSha256 } : {}),
      ...(hostKey?.kind === 'changed' ? { pinnedHostKey: hostKey.pinned, fingerprint: key?.fingerprint } : {}),
    },
  });
}

/** Writes the pins (only what is missing or replaced); returns what to tell the operator. */
function pin(target: HostTarget, env: NodeJS.ProcessEnv, certificate: CertificateProbe, key: SshHostKey | null, cert: PinState, hostKey: PinState | null, section: Section): string {
  const path = target.configPath;
  const writeKey = key !== null && hostKey !== null && hostKey.kind !== 'same';
  const writeCert = cert.kind !== 'same';
  if (!writeCert && !writeKey) return `\nAlready pinned in ${path}: nothing to change.`;

  const exists = existsSync(path);
  const text = exists ? readFileSync(path, 'utf8') : newFileHeader();
  const edits: YamlEdit[] = [];
  const base = section.name === null ? [] : ['hosts', section.name];
  if (writeCert) {
    if (section.esxi === undefined) {
      // Only the top level can lack it (a named host must have one): the host comes from CESO_HOST.
      const address = env.CESO_HOST ?? formatAddress(target.api.host, target.api.port);
      const user = env.CESO_USER;
      edits.push({ path: ['esxi'], value: { host: address, ...(user === undefined || user === '' ? {} : { user }), thumbprint: certificate.thumbprintSha256 } });
    } else {
      edits.push({ path: [...base, 'esxi', 'thumbprint'], value: certificate.thumbprintSha256 });
    }
  }
  if (writeKey && key !== null) {
    if (section.name !== null && !section.ownSsh && section.sharedSshRaw !== null) {
      // A host's own ssh section replaces the top-level one: copy what applied, plus the key.
      edits.push({ path: [...base, 'ssh'], value: { ...section.sharedSshRaw, hostKey: key.fingerprint } });
    } else {
      edits.push({ path: [...base, 'ssh', 'hostKey'], value: key.fingerprint });
    }
  }
  writePrivateFile(path, applyYamlEdits(text, edits));
  const what = [writeCert ? `${section.prefix}esxi.thumbprint` : '', writeKey ? `${section.sshPrefix}ssh.hostKey` : ''].filter((item) => item !== '');
  const notes: string[] = [];
  if (key === null) notes.push('The SSH host key was not read: run this again when SSH is reachable to pin it.');
  if (target.api.insecure) notes.push('Note: certificate checks are off (esxi.insecure or CESO_INSECURE): the pin is used once insecure is false.');
  const envPin = env.CESO_THUMBPRINT;
  if (envPin !== undefined && envPin !== '' && ![certificate.thumbprintSha256, certificate.thumbprintSha1].includes(envPin.toUpperCase())) {
    notes.push('Note: CESO_THUMBPRINT is set to another thumbprint and overrides the file: unset it.');
  }
  return [`\n${exists ? 'Pinned' : 'Wrote a new configuration with'} ${what.join(' and ')} in ${path} (mode 0600).`, ...notes].join('\n');
}

interface Section {
  /** The entry's name under hosts:, or null for the top-level sections. */
  name: string | null;
  /** "hosts.lab1." or "" — for messages. */
  prefix: string;
  sshPrefix: string;
  label: string;
  esxi: Partial<EsxiConfig> | undefined;
  thumbprint: string | undefined;
  hostKey: string | undefined;
  /** Whether the named host has its own ssh section (else the top-level one applies). */
  ownSsh: boolean;
  /** The top-level ssh mapping as written (no ${VAR} expansion), for copying into a host. */
  sharedSshRaw: Record<string, YamlValue> | null;
}

function describeSection(target: HostTarget, flags: { config?: string | undefined; host?: string | undefined }): Section {
  const loaded = loadConfig(flags.config);
  const { file } = loaded;
  // The same choice as resolveTarget: --host, else defaultHost, else the top-level sections.
  const selected = flags.host ?? file.defaultHost;
  const entry = selected === undefined ? undefined : file.hosts?.[selected];
  if (entry === undefined) {
    return {
      name: null,
      prefix: '',
      sshPrefix: '',
      label: 'the top-level esxi section',
      esxi: file.esxi,
      thumbprint: file.esxi?.thumbprint,
      hostKey: file.ssh?.hostKey,
      ownSsh: true,
      sharedSshRaw: null,
    };
  }
  const ssh: Partial<SshConfig> | undefined = entry.ssh ?? file.ssh;
  const ownSsh = entry.ssh !== undefined;
  const raw = !ownSsh && loaded.exists ? readYamlValue(readFileSync(loaded.path, 'utf8'), ['ssh']) : undefined;
  const prefix = `hosts.${target.name}.`;
  return {
    name: target.name,
    prefix,
    sshPrefix: ownSsh || file.ssh === undefined ? prefix : '',
    label: `hosts.${target.name}`,
    esxi: entry.esxi,
    thumbprint: entry.esxi.thumbprint,
    hostKey: ssh?.hostKey,
    ownSsh,
    sharedSshRaw: scalarsOf(raw),
  };
}

function scalarsOf(value: unknown): Record<string, YamlValue> | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const entries = Object.entries(value).filter(
    (entry): entry is [string, string | number | boolean] => entry[0] !== 'hostKey' && ['string', 'number', 'boolean'].includes(typeof entry[1]),
  );
  return Object.fromEntries(entries);
}

function pinState(pin: string | undefined, matches: (pin: string) => boolean): PinState {
  if (pin === undefined || pin === '') return { kind: 'none' };
  return matches(pin) ? { kind: 'same' } : { kind: 'changed', pinned: pin };
}

function hasChange(cert: PinState, key: PinState | null): boolean {
  return cert.kind === 'changed' || key?.kind === 'changed';
}

function sameAddress(a: string, b: string): boolean {
  try {
    const left = splitHostPort(a, 443);
    const right = splitHostPort(b, 443);
    return left.host.toLowerCase() === right.host.toLowerCase() && left.port === right.port;
  } catch {
    return a === b;
  }
}

function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function newFileHeader(): string {
  return [
    '# ceso configuration, written by `ceso host trust --yes` for the host given by CESO_HOST.',
    '# Keep it private (mode 0600). config.example.yaml documents every key; `ceso config validate` checks it.',
    '# The password stays in the environment (CESO_PASSWORD), or add: esxi.password: ${ESXI_PASSWORD}',
    '',
  ].join('\n');
}

function describePin(state: PinState | null, key: string): string {
  if (state === null) return '';
  switch (state.kind) {
    case 'none':
      return `not pinned (${key} is not set)`;
    case 'same':
      return `matches ${key}`;
    case 'changed':
      return `DIFFERS from ${key} ${state.pinned}: CHANGED since it was pinned`;
  }
}

function renderProbe(
  target: HostTarget,
  certificate: CertificateProbe,
  ssh: { key: SshHostKey | null; error: string | null },
  cert: PinState,
  hostKey: PinState | null,
  section: Section,
): string {
  const lines = [
    `Host ${target.name}: API ${formatAddress(target.api.host, target.api.port)}, SSH ${formatAddress(target.ssh.host, target.ssh.port)}`,
    '',
    'TLS certificate',
    `  SHA-256   ${certificate.thumbprintSha256}`,
    `  SHA-1     ${certificate.thumbprintSha1}`,
    `  Subject   ${certificate.subject}`,
    `  Issuer    ${certificate.issuer}`,
    `  Valid     ${certificate.validFrom} to ${certificate.validTo}${Date.parse(certificate.validTo) < Date.now() ? '  (EXPIRED)' : ''}`,
    `  Chain     ${certificate.chainTrusted ? 'trusted by this system’s CA store' : `not trusted by this system (${certificate.chainError ?? 'unknown'}): pin it`}`,
    `  Pin       ${describePin(cert, `${section.prefix}esxi.thumbprint`)}`,
    '',
    'SSH host key',
  ];
  if (ssh.key === null) {
    lines.push(`  not read: ${ssh.error ?? 'unknown error'}`, '  (the certificate can be pinned without it)');
  } else {
    lines.push(`  ${ssh.key.fingerprint} (${ssh.key.type})`, `  Pin       ${describePin(hostKey, `${section.sshPrefix}ssh.hostKey`)}`);
  }
  lines.push('', ...CHECK_ON_HOST);
  return lines.join('\n');
}
