// The guestinfo the real CLI writes on the simulator, read by cloud-init's OWN code (Debian 12's
// cloud-init 22.4.2, unpacked by scripts/setup.sh) and Debian's netplan: the VMware datasource
// through its environment-variable transport, the user-data processor and part handlers, the
// strict schema, the network-state parser, the netplan renderer and `netplan generate`
// (test/support/cloudinit_check.py). The VM's extraConfig is read twice, through the oracle and
// from the .vmx file on disk, and both must agree.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSimulatorWorkspace, requireBuiltCli, runCli, type SimulatorWorkspace } from '../support/cli.js';
import {
  checkWithCloudInit,
  cloudInitProblems,
  extraConfigFromVmx,
  guestinfoKeys,
  networkdUnit,
  serveOnLoopback,
  vmxFileOnDisk,
  type CloudInitCheck,
  type LoopbackServer,
} from '../support/cloudinit.js';
import type { Simulator } from '../support/simulator.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfA2dC6WcGxPx0sN1yKq0mYkq0X8oZ5yN8dGd1cV2wL ops@example';
/** ceso's last runcmd entry: the guest reports its instance-id when cloud-init has done everything else. */
const READY = 'touch /var/lib/cloud/instance/ceso-ready && vmware-rpctool "info-set guestinfo.ceso.ready $(cat /var/lib/cloud/data/instance-id)"';

interface OracleVm {
  name: string;
  uuid: string;
  vmxPath: string;
  extraConfig: Record<string, string>;
  nics: Array<{ mac: string }>;
}

type Ethernet = { addresses?: string[]; routes?: Array<{ to: string; via: string }>; dhcp4?: boolean; match?: { macaddress: string }; 'set-name'?: string; nameservers?: { addresses?: string[]; search?: string[] } };

function netplanNic(check: CloudInitCheck): Ethernet | undefined {
  const doc = load(check.netplanYaml ?? '') as { network?: { ethernets?: Record<string, Ethernet> } } | null;
  return doc?.network?.ethernets?.['nic0'];
}

const nonEmpty = (keys: Record<string, string>): Record<string, string> => Object.fromEntries(Object.entries(keys).filter(([, value]) => value !== ''));

describe('guestinfo written by the real CLI, read by cloud-init 22.4 and netplan', () => {
  let bed: SimulatorWorkspace | undefined;
  let sim: Simulator;
  let env: Record<string, string>;
  let server: LoopbackServer | undefined;
  let dir: string;
  const ceso = (...args: string[]) => runCli(args, { env, timeoutMs: 60_000 });

  beforeAll(async () => {
    requireBuiltCli();
    bed = await openSimulatorWorkspace({ mode: 'esx', vms: 0 });
    ({ sim, env } = bed);
    server = await serveOnLoopback({ '/included.yaml': '#cloud-config\npackages: [htop]\nruncmd: [echo included]\n' });
    dir = mkdtempSync(join(tmpdir(), 'ceso-ci-ud-'));
  });
  afterAll(async () => {
    await server?.close();
    await bed?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** The VM's guestinfo keys through the oracle, checked against the .vmx on disk, read by cloud-init. */
  async function readBack(name: string): Promise<{ vm: OracleVm; check: CloudInitCheck }> {
    const vm = await sim.oracle<OracleVm>('vm', name);
    const fromOracle = guestinfoKeys(vm.extraConfig);
    const fromVmx = guestinfoKeys(extraConfigFromVmx(vmxFileOnDisk(sim.volumesRoot, vm.vmxPath)));
    expect(nonEmpty(fromVmx)).toEqual(nonEmpty(fromOracle));
    expect(fromOracle['guestinfo.metadata.encoding']).toBe('gzip+base64');
    expect(fromOracle['guestinfo.userdata.encoding']).toBe('gzip+base64');
    return { vm, check: await checkWithCloudInit(fromOracle) };
  }

  async function create(name: string, ...flags: string[]): Promise<{ vm: OracleVm; check: CloudInitCheck }> {
    const result = await ceso('vm', 'create', name, '--ssh-key', KEY, ...flags, '--json');
    expect(result.code, result.stdout + result.stderr).toBe(0);
    return readBack(name);
  }

  function expectRead(check: CloudInitCheck, vm: OracleVm, hostname: string, fqdn: string): void {
    expect(cloudInitProblems(check)).toEqual([]);
    expect(check.datasource).toMatchObject({ ok: true, dsname: 'VMware', accessMethod: 'envvar', instanceId: vm.uuid, hostname, fqdn });
    expect(check.metadata?.['local-hostname']).toBe(fqdn);
    expect(check.networkSource).toBe('metadata');
    expect(netplanNic(check)?.match?.macaddress).toBe(vm.nics[0]?.mac.toLowerCase());
    expect(netplanNic(check)?.['set-name']).toBe('nic0');
    expect(JSON.stringify(check.mergedCloudConfig?.['users'])).toContain(KEY);
    expect(check.runcmd?.at(-1)).toBe(READY);
    expect(check.runcmdScript?.trimEnd().split('\n').at(-1)).toBe(READY);
  }

  it('vm create, static IPv4 with gateway, DNS and domain', async () => {
    const { vm, check } = await create('ci-v4', '--ip', '192.168.10.20/24', '--gateway', '192.168.10.1', '--dns', '1.1.1.1', '--domain', 'lab.example');
    console.error(`[cloudinit-real] cloud-init ${check.cloudInitVersion} (Debian ${check.cloudInitPackage ?? '?'}), netplan ${check.netplanVersion ?? '?'}`);
    expectRead(check, vm, 'ci-v4', 'ci-v4.lab.example');
    expect(netplanNic(check)).toMatchObject({ dhcp4: false, addresses: ['192.168.10.20/24'], routes: [{ to: '0.0.0.0/0', via: '192.168.10.1' }], nameservers: { addresses: ['1.1.1.1'], search: ['lab.example'] } });
    const unit = networkdUnit(check) ?? '';
    expect(unit).toContain('Address=192.168.10.20/24');
    expect(unit).toMatch(/\[Route\]\nDestination=0\.0\.0\.0\/0\nGateway=192\.168\.10\.1/);
    expect(unit).toContain('DNS=1.1.1.1');
    expect(unit).toContain('Domains=lab.example');
  });

  it('vm create, DHCP', async () => {
    const { vm, check } = await create('ci-dhcp', '--no-power-on');
    expectRead(check, vm, 'ci-dhcp', 'ci-dhcp');
    const nic = netplanNic(check);
    expect(nic).toMatchObject({ dhcp4: true });
    expect(nic?.addresses).toBeUndefined();
    expect(nic?.routes).toBeUndefined();
    expect(networkdUnit(check)).toContain('DHCP=ipv4');
  });

  it('vm create, static IPv6 with an IPv6 gateway', async () => {
    const { vm, check } = await create('ci-v6', '--ip', '2001:db8:20::20/64', '--gateway', '2001:db8:20::1', '--dns', '2001:db8:20::53', '--domain', 'lab.example', '--no-power-on');
    expectRead(check, vm, 'ci-v6', 'ci-v6.lab.example');
    expect(netplanNic(check)).toMatchObject({ addresses: ['2001:db8:20::20/64'], routes: [{ to: '::/0', via: '2001:db8:20::1' }], nameservers: { addresses: ['2001:db8:20::53'] } });
    const unit = networkdUnit(check) ?? '';
    expect(unit).toContain('Address=2001:db8:20::20/64');
    expect(unit).toMatch(/\[Route\]\nDestination=::\/0\nGateway=2001:db8:20::1/);
  });

  it('vm clone with re-IP: a new instance-id, hostname and address, the user data kept', async () => {
    expect((await ceso('vm', 'power', 'ci-v4', 'off', '--json')).code).toBe(0);
    const source = await readBack('ci-v4');
    const result = await ceso('vm', 'clone', 'ci-v4', 'ci-v4b', '--ip', '192.168.10.21/24', '--gateway', '192.168.10.1', '--no-power-on', '--json');
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const { vm, check } = await readBack('ci-v4b');
    expectRead(check, vm, 'ci-v4b', 'ci-v4b');
    expect(check.datasource.instanceId).not.toBe(source.check.datasource.instanceId);
    expect(netplanNic(check)).toMatchObject({ addresses: ['192.168.10.21/24'], routes: [{ to: '0.0.0.0/0', via: '192.168.10.1' }] });
    expect(netplanNic(check)?.match?.macaddress).not.toBe(netplanNic(source.check)?.match?.macaddress);
    expect(networkdUnit(check)).toMatch(/\[Route\]\nDestination=0\.0\.0\.0\/0\nGateway=192\.168\.10\.1/);
  });

  const MIME = [
    'Content-Type: multipart/mixed; boundary="==BOUNDARY=="',
    'MIME-Version: 1.0',
    '',
    '--==BOUNDARY==',
    'Content-Type: text/x-shellscript; charset="us-ascii"',
    'Content-Disposition: attachment; filename="setup.sh"',
    '',
    '#!/bin/sh',
    'echo multipart-script',
    '',
    '--==BOUNDARY==',
    'Content-Type: text/cloud-config; charset="us-ascii"',
    'Content-Disposition: attachment; filename="extra.cfg"',
    '',
    '#cloud-config',
    'packages: [jq]',
    'runcmd: [echo multipart-runcmd]',
    '',
    '--==BOUNDARY==--',
    '',
  ].join('\n');

  const kinds: Array<[string, string, () => string, (check: CloudInitCheck) => void]> = [
    [
      'cloud-config',
      '#cloud-config (runcmd, packages, write_files)',
      () => '#cloud-config\npackages: [nginx]\nwrite_files:\n  - path: /etc/motd\n    content: "managed by ceso\\n"\n    permissions: "0644"\nruncmd:\n  - [systemctl, enable, --now, nginx]\n',
      (check) => {
        expect(check.parts.map((part) => part.contentType)).toEqual(['text/cloud-config']);
        expect(check.mergedCloudConfig?.['packages']).toEqual(['nginx']);
        expect(JSON.stringify(check.mergedCloudConfig?.['write_files'])).toContain('/etc/motd');
        expect(check.runcmd?.slice(0, -1)).toEqual([['systemctl', 'enable', '--now', 'nginx']]);
      },
    ],
    [
      'script',
      '#!/bin/bash script',
      () => '#!/bin/bash\necho from-script > /tmp/ceso-script\n',
      (check) => {
        expect(check.parts.map((part) => part.contentType)).toContain('text/x-shellscript');
        const scripts = Object.entries(check.scripts).filter(([name]) => name !== 'runcmd');
        expect(scripts.map(([, content]) => content)).toEqual(['#!/bin/bash\necho from-script > /tmp/ceso-script\n']);
        // scripts-user runs scripts/ in name order: the user's script before runcmd (the ready report)
        expect(scripts.every(([name]) => name < 'runcmd')).toBe(true);
      },
    ],
    [
      'include',
      '#include (a loopback URL)',
      () => `#include\n${server?.url ?? ''}/included.yaml\n`,
      (check) => {
        expect(check.includes).toEqual([expect.objectContaining({ url: `${server?.url ?? ''}/included.yaml`, fetched: true })]);
        expect(check.mergedCloudConfig?.['packages']).toEqual(['htop']);
        expect(check.runcmd).toContain('echo included');
      },
    ],
    [
      'boothook',
      '#cloud-boothook',
      () => '#cloud-boothook\n#!/bin/sh\necho boothook > /tmp/ceso-boothook\n',
      (check) => {
        expect(check.parts.map((part) => part.contentType)).toContain('text/cloud-boothook');
        expect(Object.values(check.boothooks)).toEqual(['#!/bin/sh\necho boothook > /tmp/ceso-boothook\n']);
      },
    ],
    [
      'mime',
      'MIME multipart with a shell part and a cloud-config part',
      () => MIME,
      (check) => {
        expect(check.parts.map((part) => part.contentType)).toEqual(expect.arrayContaining(['text/x-shellscript', 'text/cloud-config']));
        expect(check.mergedCloudConfig?.['packages']).toEqual(['jq']);
        expect(check.runcmd).toContain('echo multipart-runcmd');
        expect(Object.values(check.scripts)).toContain('#!/bin/sh\necho multipart-script\n');
      },
    ],
  ];

  kinds.forEach(([slug, title, content, specific], index) => {
    it(`vm create --user-data: ${title}`, async () => {
      const file = join(dir, `${slug}.txt`);
      writeFileSync(file, content());
      const name = `ci-ud-${slug}`;
      const { vm, check } = await create(name, '--user-data', file, '--ip', `10.20.0.${30 + index}/24`, '--gateway', '10.20.0.1', '--dns', '10.20.0.53', '--domain', 'lab.example', '--no-power-on');
      expectRead(check, vm, name, `${name}.lab.example`);
      expect(check.parts[0]?.contentType).toBe('text/cloud-config');
      expect(netplanNic(check)).toMatchObject({ addresses: [`10.20.0.${30 + index}/24`], routes: [{ to: '0.0.0.0/0', via: '10.20.0.1' }] });
      specific(check);
    });
  });

  it('vm clone of a VM with MIME multipart user data: re-targeted, ready report still last', async () => {
    const result = await ceso('vm', 'clone', 'ci-ud-mime', 'ci-ud-mime2', '--ip', '10.20.0.60/24', '--gateway', '10.20.0.1', '--dns', '10.20.0.53', '--domain', 'lab.example', '--no-power-on', '--json');
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const { vm, check } = await readBack('ci-ud-mime2');
    expectRead(check, vm, 'ci-ud-mime2', 'ci-ud-mime2.lab.example');
    expect(check.runcmd).toContain('echo multipart-runcmd');
    expect(Object.values(check.scripts)).toContain('#!/bin/sh\necho multipart-script\n');
  });
});
