// The SSH half of the test bed, through a real sshd and the system ssh client: the ESXi
// shell emulator (vim-cmd, vmkfstools) prints what a real host prints
// (/work/shared/reference/esxi-shell.md) and acts on the same inventory the simulator serves
// over SOAP, as the oracle (an independent govmomi reader) sees it.
import { readdirSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../support/simulator.js';
import { startSshServer, type SshServer } from '../support/sshd.js';

interface VmRow {
  vmid: string;
  name: string;
  file: string;
  guestOs: string;
  version: string;
  annotation: string;
  raw: string;
}

const HEADER = 'Vmid      Name                        File                         Guest OS        Version   Annotation';
const ROW = /^(\S+)\s{3,}(.+?)\s{3,}(\[[^\]]*\] .*?)\s{3,}(\S+)\s{3,}(vmx-\d+)\s{3,}(.*)$/;

/** Parses `vim-cmd vmsvc/getallvms` the way ceso must: rows start with a vmid, fields are
 * separated by 3+ spaces, lines that are not rows continue the previous annotation. */
function parseGetAllVms(out: string): VmRow[] {
  const lines = out.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  expect(lines[0]).toBe(HEADER);
  const rows: VmRow[] = [];
  for (const line of lines.slice(1)) {
    const m = ROW.exec(line);
    if (m) {
      rows.push({ vmid: m[1]!, name: m[2]!, file: m[3]!, guestOs: m[4]!, version: m[5]!, annotation: m[6]!, raw: line });
    } else {
      const last = rows[rows.length - 1];
      if (!last) throw new Error(`getallvms: continuation line before any row: ${JSON.stringify(line)}`);
      last.annotation += `\n${line}`;
    }
  }
  return rows;
}

/** Single-quotes an argument for the remote shell. */
const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

interface OracleVm {
  name: string;
  id: string;
  uuid: string;
  powerState: string;
  cpu: number;
  memoryMB: number;
  ip: string | null;
  vmxPath: string;
  annotation: string;
  extraConfig: Record<string, string>;
  disks: { file: string; capacityKB: number; thin: boolean }[];
  nics: { network: string; mac: string; type: string; addressType: string }[];
  guestinfo: { metadata: { parsed: Record<string, unknown> | null } | null };
}

interface OracleListItem {
  name: string;
  id: string;
  vmxPath: string;
  cpu: number;
  memoryMB: number;
  ip: string | null;
  powerState: string;
}

/** Processes whose command line contains needle (Linux /proc). */
function processesMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue; // zombie: already dead
      if (cmd.includes(needle)) out.push(Number(e));
    } catch {
      // gone
    }
  }
  return out;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('ESXi shell emulator over a real sshd', () => {
  let sim: Simulator;
  let ssh: SshServer;
  const sh = async (cmd: string, input?: string): Promise<{ stdout: string; stderr: string; code: number }> =>
    await ssh.exec(cmd, input === undefined ? {} : { input });

  beforeAll(async () => {
    sim = await startSimulator({ mode: 'esx', vms: 2 });
    ssh = await startSshServer({ sim });
  });

  afterAll(async () => {
    await ssh?.stop();
    await sim?.stop();
  });

  const CLONE_DIR = 'web 01';
  const CLONE_NAME = 'web 01 (ssh) [clone]';
  let cloneId = '';
  const metadata = {
    'instance-id': 'i-ssh-clone-1',
    'local-hostname': 'web01',
    network: { version: 2, ethernets: { nic0: { match: { macaddress: '00:50:56:aa:bb:01' }, 'set-name': 'nic0', addresses: ['10.20.30.40/24'] } } },
  };

  it('runs the emulator from PATH with the simulator config in a plain ssh exec', async () => {
    const r = await sh('command -v vim-cmd; command -v vmkfstools; printenv CESO_TESTBED_CONFIG');
    expect(r.code).toBe(0);
    const [vimCmd, vmkfstools, config] = r.stdout.trim().split('\n');
    expect(vimCmd).toMatch(/\/test\/testbed\/bin\/vim-cmd$/);
    expect(vmkfstools).toMatch(/\/test\/testbed\/bin\/vmkfstools$/);
    expect(config).toBe(ssh.configPath);
    expect(ssh.host).toBe('127.0.0.1');
    expect(ssh.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(readFileSync(ssh.knownHostsPath, 'utf8')).toMatch(new RegExp(`^\\[127\\.0\\.0\\.1\\]:${ssh.port} ssh-ed25519 `));
    expect(ssh.volumesRoot).toBe(sim.volumesRoot);
  });

  it("getallvms lists the simulator's VMs in the reference format", async () => {
    const r = await sh('vim-cmd vmsvc/getallvms');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const rows = parseGetAllVms(r.stdout);
    const list = await sim.oracle<OracleListItem[]>('list');
    expect(rows.map((x) => [x.vmid, x.name, x.file]).sort()).toEqual(list.map((v) => [v.id, v.name, v.vmxPath]).sort());
    // sorted by vmid as strings ("vm-11" < "vm-9"), not as numbers
    const ids = rows.map((x) => x.vmid);
    expect(ids).toEqual([...ids].sort());
    for (const row of rows) {
      expect(row.guestOs).toBe('ubuntu64Guest');
      expect(row.version).toMatch(/^vmx-\d+$/);
      // empty annotation: the row ends in the version column's padding
      if (row.annotation === '') expect(row.raw).toMatch(/vmx-\d+ {3,}$/);
    }
    expect(rows.map((x) => x.name)).toContain(sim.template);
  });

  it('get.summary, get.guest and power.getstate describe a VM as the API does', async () => {
    const list = await sim.oracle<OracleListItem[]>('list');
    const running = list.find((v) => v.powerState === 'poweredOn' && v.ip);
    expect(running).toBeDefined();
    const vm = running!;
    const s = await sh(`vim-cmd vmsvc/get.summary ${vm.id}`);
    expect(s.code).toBe(0);
    const lines = s.stdout.split('\n');
    expect(lines[0]).toBe('Listsummary:');
    expect(lines[1]).toBe('(vim.vm.Summary) {');
    expect(lines[2]).toBe(`   vm = 'vim.VirtualMachine:${vm.id}', `);
    expect(s.stdout).toContain('      powerState = "poweredOn", \n');
    expect(s.stdout).toContain(`      name = "${vm.name}", \n`);
    expect(s.stdout).toContain(`      vmPathName = "${vm.vmxPath}", \n`);
    expect(s.stdout).toContain(`      memorySizeMB = ${vm.memoryMB}, \n`);
    expect(s.stdout).toContain(`      numCpu = ${vm.cpu}, \n`);
    expect(s.stdout).toContain(`      ipAddress = "${vm.ip}", \n`);
    expect(s.stdout).toContain('   overallStatus = "green", \n');
    expect(s.stdout.trimEnd().endsWith('}')).toBe(true);

    const g = await sh(`vim-cmd vmsvc/get.guest ${vm.id}`);
    expect(g.code).toBe(0);
    expect(g.stdout.startsWith('Guest information:\n\n(vim.vm.GuestInfo) {\n')).toBe(true);
    expect(g.stdout).toContain(`   ipAddress = "${vm.ip}", \n`);
    expect(g.stdout).toContain('   net = (vim.vm.GuestInfo.NicInfo) [\n');
    expect(g.stdout).toMatch(/ {9}macAddress = "[0-9a-f:]{17}", \n/);
    expect(g.stdout).toContain(`         ipAddress = (string) [\n            "${vm.ip}"`);

    const p = await sh(`vim-cmd vmsvc/power.getstate ${vm.id}`);
    expect(p.stdout).toBe('Retrieved runtime info\nPowered on\n');
  });

  it('hostsvc/datastore/listsummary reports the datastore space the API reports', async () => {
    const r = await sh('vim-cmd hostsvc/datastore/listsummary');
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith('(vim.Datastore.Summary) [\n   (vim.Datastore.Summary) {\n')).toBe(true);
    const dss = await sim.oracle<{ name: string; capacity: number; freeSpace: number }[]>('datastores');
    const ds = dss.find((d) => d.name === 'datastore1')!;
    expect(r.stdout).toContain('      name = "datastore1", \n');
    expect(r.stdout).toContain(`      capacity = ${ds.capacity}, \n`);
    expect(r.stdout).toContain(`      freeSpace = ${ds.freeSpace}, \n`);
  });

  it('a bad vmid prints the NotFound fault of a newer host and fails', async () => {
    const expected =
      '(vim.fault.NotFound) {\n' +
      '   faultCause = (vmodl.MethodFault) null, \n' +
      '   faultMessage = <unset>\n' +
      '   msg = "Unable to find a VM corresponding to "16""\n' +
      '}\n';
    for (const cmd of ['vmsvc/get.summary', 'vmsvc/power.on', 'vmsvc/destroy']) {
      const r = await sh(`vim-cmd ${cmd} 16`);
      expect(r.stdout).toBe(expected);
      expect(r.code).not.toBe(0);
    }
    const missing = await sh(`vim-cmd solo/registervm ${q(`${sim.volumesRoot}/datastore1/nope/nope.vmx`)}`);
    expect(missing.stdout).toMatch(/^\(vim\.fault\.NotFound\) \{\n/);
    expect(missing.code).not.toBe(0);
  });

  it('a cold clone over SSH (vmkfstools -i, .vmx, registervm, power.on) is seen by the API', async () => {
    const tmpl = (await sim.oracle<OracleVm | null>('vm', sim.template!))!;
    expect(tmpl).not.toBeNull();
    const ds = `${sim.volumesRoot}/datastore1`;
    const tmplDir = `${ds}/${sim.template!}`;
    const srcVmdk = `${tmplDir}/${sim.template!}.vmdk`;
    const dstDir = `${ds}/${CLONE_DIR}`;
    const dstVmdk = `${dstDir}/${CLONE_DIR}.vmdk`;
    const dstVmx = `${dstDir}/${CLONE_DIR}.vmx`;

    const c = await sh(`mkdir -p ${q(dstDir)} && vmkfstools -i ${q(srcVmdk)} ${q(dstVmdk)} -d thin`);
    expect(c.code).toBe(0);
    expect(c.stdout).toBe(`Destination disk format: VMFS thin-provisioned\nCloning disk '${srcVmdk}'...\nClone: 100% done.\n`);
    const again = await sh(`vmkfstools -i ${q(srcVmdk)} ${q(dstVmdk)} -d thin`);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('The file already exists');
    const desc = await sh(`cat ${q(dstVmdk)}`);
    expect(desc.stdout).toMatch(new RegExp(`^RW \\d+ VMFS "${CLONE_DIR}-flat\\.vmdk"$`, 'm'));
    expect(desc.stdout).toContain('ddb.thinProvisioned = "1"');

    // the template's .vmx, edited as the tools that work do it
    const src = await sh(`cat ${q(`${tmplDir}/${sim.template!}.vmx`)}`);
    expect(src.code).toBe(0);
    const drop = /^(uuid\.bios|uuid\.location|vc\.uuid|sched\.swap\.derivedName|ethernet\d+\.generatedAddress(Offset)?|ethernet0\.addressType|displayName|nvram|numvcpus|memSize|scsi0:0\.fileName|guestinfo\..*|annotation)\s*=/i;
    const kept = src.stdout.split('\n').filter((l) => l.trim() !== '' && !drop.test(l));
    const md = gzipSync(JSON.stringify(metadata)).toString('base64');
    const userdata = Buffer.from('#cloud-config\nhostname: web01\n').toString('base64');
    const vmxText = [
      ...kept,
      `displayName = "${CLONE_NAME}"`,
      `nvram = "${CLONE_DIR}.nvram"`,
      'numvcpus = "4"',
      'memSize = "4096"',
      `scsi0:0.fileName = "${CLONE_DIR}.vmdk"`,
      'ethernet0.addressType = "static"',
      'ethernet0.address = "00:50:56:aa:bb:01"',
      'uuid.action = "create"',
      'annotation = "first line|0Asecond line"',
      `guestinfo.metadata = "${md}"`,
      'guestinfo.metadata.encoding = "gzip+base64"',
      `guestinfo.userdata = "${userdata}"`,
      'guestinfo.userdata.encoding = "base64"',
      'ceso.managed = "true"',
      '',
    ].join('\n');
    const w = await sh(`cat > ${q(dstVmx)}`, vmxText);
    expect(w.code).toBe(0);

    const reg = await sh(`vim-cmd solo/registervm ${q(dstVmx)}`);
    expect(reg.code).toBe(0);
    expect(reg.stdout).toMatch(/^\S+\n$/);
    cloneId = reg.stdout.trim();
    const dup = await sh(`vim-cmd solo/registervm ${q(dstVmx)}`);
    expect(dup.stdout).toContain('(vim.fault.AlreadyExists) {');
    expect(dup.code).not.toBe(0);

    const on = await sh(`vim-cmd vmsvc/power.on ${cloneId}`);
    expect(on.stdout).toBe('Powering on VM:\n');
    expect(on.code).toBe(0);

    const vm = await until('the clone to report its IP', async () => {
      const v = await sim.oracle<OracleVm | null>('vm', CLONE_NAME);
      return v?.ip ? v : undefined;
    });
    expect(vm.id).toBe(cloneId);
    expect(vm.name).toBe(CLONE_NAME);
    expect(vm.cpu).toBe(4);
    expect(vm.memoryMB).toBe(4096);
    expect(vm.powerState).toBe('poweredOn');
    expect(vm.vmxPath).toBe(`[datastore1] ${CLONE_DIR}/${CLONE_DIR}.vmx`);
    expect(vm.uuid).not.toBe(tmpl.uuid);
    expect(vm.annotation).toBe('first line\nsecond line');
    expect(vm.disks).toHaveLength(1);
    expect(vm.disks[0]!.file).toBe(`[datastore1] ${CLONE_DIR}/${CLONE_DIR}.vmdk`);
    expect(vm.disks[0]!.capacityKB).toBe(tmpl.disks[0]!.capacityKB);
    expect(vm.nics[0]?.mac).toBe('00:50:56:aa:bb:01');
    expect(vm.extraConfig['guestinfo.metadata']).toBe(md);
    expect(vm.extraConfig['guestinfo.metadata.encoding']).toBe('gzip+base64');
    expect(vm.extraConfig['guestinfo.userdata']).toBe(userdata);
    expect(vm.extraConfig['ceso.managed']).toBe('true');
    expect(vm.guestinfo.metadata?.parsed?.['instance-id']).toBe('i-ssh-clone-1');
    expect(vm.ip).toBe('10.20.30.40');

    const files = await sim.listFiles();
    expect(files).toEqual(expect.arrayContaining([`${CLONE_DIR}/${CLONE_DIR}.vmx`, `${CLONE_DIR}/${CLONE_DIR}.vmdk`, `${CLONE_DIR}/${CLONE_DIR}-flat.vmdk`]));
  });

  it('names with spaces and brackets and multi-line annotations render raw in getallvms', async () => {
    const r = await sh('vim-cmd vmsvc/getallvms');
    const rows = parseGetAllVms(r.stdout);
    const row = rows.find((x) => x.vmid === cloneId);
    expect(row).toBeDefined();
    expect(row!.name).toBe(CLONE_NAME);
    expect(row!.file).toBe(`[datastore1] ${CLONE_DIR}/${CLONE_DIR}.vmx`);
    expect(row!.annotation).toBe('first line\nsecond line');
    expect(row!.raw).toMatch(new RegExp(`^${cloneId} {3,}web 01 \\(ssh\\) \\[clone\\] {3,}\\[datastore1\\] web 01/web 01\\.vmx {3,}`));
    expect(r.stdout).toContain('   first line\nsecond line\n');
    const g = await sh(`vim-cmd vmsvc/get.guest ${cloneId}`);
    expect(g.stdout).toContain('   hostName = "web01", \n');
  });

  it('power.on of a running VM fails with the prefixed InvalidPowerState fault', async () => {
    const r = await sh(`vim-cmd vmsvc/power.on ${cloneId}`);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe(
      'Powering on VM:\n' +
        'Power on failed: (vim.fault.InvalidPowerState) {\n' +
        '   faultCause = (vmodl.MethodFault) null, \n' +
        '   faultMessage = <unset>, \n' +
        '   requestedState = "poweredOn", \n' +
        '   existingState = "poweredOn"\n' +
        '   msg = "The attempted operation cannot be performed in the current state (Powered on)."\n' +
        '}\n',
    );
  });

  it('snapshots: create, the tree of snapshot.get, removeall', async () => {
    // includeMemory=1: a memory snapshot of a running VM is "powered on" (a disk-only one is "powered off")
    expect((await sh(`vim-cmd vmsvc/snapshot.create ${cloneId} snap01 ${q('snap01 description')} 1 0`)).stdout).toBe('Create Snapshot:\n');
    expect((await sh(`vim-cmd vmsvc/snapshot.create ${cloneId} snap02`)).code).toBe(0);
    const g = await sh(`vim-cmd vmsvc/snapshot.get ${cloneId}`);
    expect(g.stdout).toMatch(
      /^Get Snapshot:\n\|-ROOT\n--Snapshot Name {8}: snap01\n--Snapshot Id {10}: \d+\n--Snapshot Desciption {2}: snap01 description\n--Snapshot Created On {2}: \d+\/\d+\/\d{4} \d+:\d\d:\d\d\n--Snapshot State {7}: powered on\n--\|-CHILD\n----Snapshot Name {8}: snap02\n/,
    );
    expect((await sh(`vim-cmd vmsvc/snapshot.removeall ${cloneId}`)).code).toBe(0);
    expect((await sh(`vim-cmd vmsvc/snapshot.get ${cloneId}`)).stdout).toBe('Get Snapshot:\n');
  });

  it('vmkfstools -X grows a disk (not a running one, never shrinking) and the API sees it', async () => {
    const disk = `${sim.volumesRoot}/datastore1/${CLONE_DIR}/${CLONE_DIR}.vmdk`;
    const locked = await sh(`vmkfstools -X 20G ${q(disk)}`);
    expect(locked.code).not.toBe(0);
    expect(locked.stderr).toContain('Failed to lock the file');
    expect((await sh(`vim-cmd vmsvc/power.off ${cloneId}`)).stdout).toBe('Powering off VM:\n');
    const grow = await sh(`vmkfstools -X 20G ${q(disk)}`);
    expect(grow.code).toBe(0);
    const vm = (await sim.oracle<OracleVm | null>('vm', '--id', cloneId))!;
    expect(vm.disks[0]!.capacityKB).toBe(20 * 1024 * 1024);
    expect((await sh(`stat -c %s ${q(disk.replace(/\.vmdk$/, '-flat.vmdk'))}`)).stdout.trim()).toBe(String(20 * 1024 ** 3));
    const shrink = await sh(`vmkfstools -X 10G ${q(disk)}`);
    expect(shrink.code).not.toBe(0);
  });

  it("getallvms skips a VM whose .vmx is gone; vmkfstools -c and -U make and delete disks", async () => {
    const dir = `${sim.volumesRoot}/datastore1/ghost`;
    const c = await sh(`mkdir -p ${q(dir)} && vmkfstools -c 1G -d thin ${q(`${dir}/ghost.vmdk`)}`);
    expect(c.code).toBe(0);
    const vmx = ['.encoding = "UTF-8"', 'config.version = "8"', 'virtualHW.version = "19"', 'displayName = "ghost"', 'guestOS = "ubuntu-64"',
      'numvcpus = "1"', 'memSize = "512"', 'scsi0.present = "TRUE"', 'scsi0.virtualDev = "pvscsi"', 'scsi0:0.present = "TRUE"',
      'scsi0:0.fileName = "ghost.vmdk"', ''].join('\n');
    await sh(`cat > ${q(`${dir}/ghost.vmx`)}`, vmx);
    const reg = await sh(`vim-cmd solo/registervm ${q(`[datastore1] ghost/ghost.vmx`)}`);
    expect(reg.code).toBe(0);
    const id = reg.stdout.trim();
    const ghost = (await sim.oracle<OracleVm | null>('vm', '--id', id))!;
    expect(ghost.name).toBe('ghost');
    expect(ghost.disks[0]!.capacityKB).toBe(1024 * 1024);
    await sh(`rm ${q(`${dir}/ghost.vmx`)}`);
    const r = await sh('vim-cmd vmsvc/getallvms');
    expect(r.stderr).toContain(`Skipping invalid VM '${id}'`);
    expect(parseGetAllVms(r.stdout).map((x) => x.vmid)).not.toContain(id);
    expect((await sh(`vim-cmd vmsvc/unregister ${id}`)).code).toBe(0);
    expect((await sh(`vmkfstools -U ${q(`${dir}/ghost.vmdk`)}`)).code).toBe(0);
    expect((await sh(`ls -A ${q(dir)}`)).stdout.split('\n').filter((f) => f.endsWith('.vmdk'))).toEqual([]);
    expect((await sh(`vmkfstools -U ${q(`${dir}/ghost.vmdk`)}`)).code).not.toBe(0);
  });

  it('destroy refuses a running VM, then removes the VM and its files', async () => {
    const on = await sh(`vim-cmd vmsvc/power.on ${cloneId}`);
    expect(on.code).toBe(0);
    const refused = await sh(`vim-cmd vmsvc/destroy ${cloneId}`);
    expect(refused.code).not.toBe(0);
    expect(refused.stdout).toContain('(vim.fault.InvalidPowerState) {');
    expect((await sh(`vim-cmd vmsvc/power.off ${cloneId}`)).code).toBe(0);
    const d = await sh(`vim-cmd vmsvc/destroy ${cloneId}`);
    expect(d.code).toBe(0);
    expect(d.stdout).toBe('');
    expect(await sim.oracle('vm', '--id', cloneId)).toBeNull();
    expect((await sh(`test -e ${q(`${sim.volumesRoot}/datastore1/${CLONE_DIR}`)}`)).code).not.toBe(0);
    expect((await sim.listFiles()).filter((f) => f.startsWith(`${CLONE_DIR}/`))).toEqual([]);
    const rows = parseGetAllVms((await sh('vim-cmd vmsvc/getallvms')).stdout);
    expect(rows.map((x) => x.vmid)).not.toContain(cloneId);
  });

  it('stops sshd and the simulator without leaving a process behind', async () => {
    const sshDir = ssh.dir;
    const simDir = sim.dir;
    await ssh.stop();
    await sim.stop();
    expect(processesMentioning(sshDir)).toEqual([]);
    expect(processesMentioning(simDir)).toEqual([]);
  });
});
