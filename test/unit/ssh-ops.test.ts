// The SSH path's remote scripts run by a real POSIX shell (dash; ESXi has busybox ash) against a
// stand-in vim-cmd that prints the reference's formats, and datastores named "SSD Home" and
// "datastore (1)" on disk. The SSH transport itself is covered by the integration tests.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecOptions, ExecResult, RemoteShell } from '../../src/ssh/connection.js';
import { getVm, listVms } from '../../src/ssh/ops/inventory.js';
import { planDelete } from '../../src/ssh/ops/lifecycle.js';
import { executePlan } from '../../src/core/plan.js';

const work = mkdtempSync(join(tmpdir(), 'ceso-ssh-ops-'));
const bin = join(work, 'bin');
const volumes = join(work, 'volumes');
const data = join(work, 'data');

class LocalShell implements RemoteShell {
  execCount = 0;
  commands: string[] = [];
  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    this.execCount += 1;
    this.commands.push(command);
    return new Promise((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', command], { cwd: work, env: { PATH: `${bin}:/usr/bin:/bin`, DATA: data } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ stdout, stderr, code }));
      // A command that never reads its stdin may exit first: the write then fails with EPIPE, harmlessly.
      child.stdin.on('error', () => undefined);
      child.stdin.end(options.stdin ?? '');
    });
  }
  async close(): Promise<void> {}
}

const VMS = [
  { id: '10', name: 'web [blue] 2', ds: 'SSD Home', dir: 'web [blue] 2', power: 'poweredOn', ip: '10.0.0.5', ceso: 'ceso.managed = "true"\nceso.expiresAt = "2030-01-01T00:00:00.000Z"\n' },
  { id: '11', name: "it's $(touch pwned)", ds: 'datastore (1)', dir: "it's $(touch pwned)", power: 'poweredOff', ip: null, ceso: '' },
  { id: '6', name: 'twin', ds: 'datastore (1)', dir: 'twin', power: 'suspended', ip: null, ceso: '  ceso.managed = "true"\nceso.template = "t"\n' },
  { id: '7', name: 'twin', ds: 'datastore (1)', dir: 'twin_1', power: 'poweredOff', ip: null, ceso: 'ceso.managed = ""\n' },
];

function summary(vm: (typeof VMS)[number]): string {
  return `Listsummary:
(vim.vm.Summary) {
   vm = 'vim.VirtualMachine:${vm.id}', 
   runtime = (vim.vm.RuntimeInfo) {
      powerState = "${vm.power}", 
   }, 
   guest = (vim.vm.Summary.GuestSummary) {
      ipAddress = ${vm.ip === null ? '<unset>' : `"${vm.ip}"`}, 
   }, 
   config = (vim.vm.Summary.ConfigSummary) {
      name = "${vm.name}", 
      vmPathName = "[${vm.ds}] ${vm.dir}/${vm.dir}.vmx", 
      memorySizeMB = 2048, 
      numCpu = 2, 
      uuid = "4200000${vm.id}-0000-0000-0000-000000000000", 
      guestId = "ubuntu64Guest", 
   }, 
   overallStatus = "green", 
}
`;
}

beforeAll(() => {
  mkdirSync(bin);
  mkdirSync(data);
  const rows = VMS.map((vm) => `${vm.id.padEnd(7)}${vm.name}   [${vm.ds}] ${vm.dir}/${vm.dir}.vmx   ubuntu64Guest   vmx-19   ${vm.id === '10' ? 'line one\nline two (not a row) [x] y.vmx' : ''}`);
  // string-sorted vmids, as the host prints them
  rows.sort();
  writeFileSync(join(data, 'getallvms'), `Vmid      Name                        File                         Guest OS        Version   Annotation\n${rows.join('\n')}\n`);
  for (const vm of VMS) {
    writeFileSync(join(data, `summary-${vm.id}`), summary(vm));
    mkdirSync(join(volumes, vm.ds, vm.dir), { recursive: true });
    writeFileSync(join(volumes, vm.ds, vm.dir, `${vm.dir}.vmx`), `displayName = "${vm.name}"\nmemSize = "2048"\n${vm.ceso}`);
  }
  writeFileSync(
    join(bin, 'vim-cmd'),
    `#!/bin/sh
case "$1" in
  vmsvc/getallvms) cat "$DATA/getallvms"; echo "Skipping invalid VM '16'" >&2 ;;
  vmsvc/get.summary|vmsvc/get.guest|vmsvc/snapshot.get|vmsvc/device.getdevices|vmsvc/destroy)
    if [ ! -f "$DATA/summary-$2" ]; then
      printf '(vim.fault.NotFound) {\\n   faultCause = (vmodl.MethodFault) null, \\n   faultMessage = <unset>\\n   msg = "Unable to find a VM corresponding to "%s""\\n}\\n' "$2"; exit 1
    fi
    case "$1" in
      vmsvc/get.summary) cat "$DATA/summary-$2" ;;
      vmsvc/get.guest) printf 'Guest information:\\n\\n<unset>\\n' ;;
      vmsvc/snapshot.get) echo 'Get Snapshot:' ;;
      vmsvc/device.getdevices) printf '(vim.vm.VirtualHardware) {\\n   device = (vim.vm.device.VirtualDevice) [],\\n}\\n' ;;
      vmsvc/destroy) echo "$2" >> "$DATA/destroyed" ;;
    esac ;;
  *) echo "Invalid command '$1'"; exit 1 ;;
esac
`,
  );
  chmodSync(join(bin, 'vim-cmd'), 0o755);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('SSH operations against a stand-in ESXi shell', () => {
  it('lists every VM in ONE remote command, markers from the .vmx, sorted by name then id', async () => {
    const shell = new LocalShell();
    const vms = await listVms({ shell, volumesRoot: volumes });
    expect(shell.execCount).toBe(1);
    expect(vms.map((vm) => [vm.name, vm.id, vm.status, vm.ip, vm.managed, vm.expiresAt])).toEqual([
      ["it's $(touch pwned)", '11', 'stopped', null, false, null],
      ['twin', '6', 'suspended', null, true, null],
      ['twin', '7', 'stopped', null, false, null],
      ['web [blue] 2', '10', 'running', '10.0.0.5', true, '2030-01-01T00:00:00.000Z'],
    ]);
    expect(vms[0]).toEqual({
      name: "it's $(touch pwned)",
      id: '11',
      uuid: '420000011-0000-0000-0000-000000000000',
      status: 'stopped',
      powerState: 'poweredOff',
      cpu: 2,
      memoryMB: 2048,
      ip: null,
      guestId: 'ubuntu64Guest',
      managed: false,
      expiresAt: null,
      linked: false,
      pool: null,
      poolState: null,
    });
    expect(existsSync(join(work, 'pwned'))).toBe(false);
  });

  it('reads one VM in one command after getallvms, and refuses ambiguous names', async () => {
    const shell = new LocalShell();
    const vm = await getVm({ shell, volumesRoot: volumes }, { name: "it's $(touch pwned)" });
    expect(shell.execCount).toBe(2);
    expect(vm).toMatchObject({ id: '11', vmxPath: "[datastore (1)] it's $(touch pwned)/it's $(touch pwned).vmx", datastore: 'datastore (1)', firmware: 'bios', disks: [], nics: [], snapshots: [] });
    await expect(getVm({ shell, volumesRoot: volumes }, { name: 'twin' })).rejects.toMatchObject({ code: 'AMBIGUOUS' });
    await expect(getVm({ shell, volumesRoot: volumes }, { name: '$(id)' })).rejects.toMatchObject({ code: 'VM_NOT_FOUND' });
    expect(existsSync(join(work, 'pwned'))).toBe(false);
  });

  it('deletes a VM whose folder name would break naive quoting, and only that folder', async () => {
    const shell = new LocalShell();
    const context = { shell, volumesRoot: volumes };
    await expect(planDelete(context, { vm: { id: '11' }, force: false })).rejects.toMatchObject({ code: 'NOT_MANAGED' });
    const { plan, target } = await planDelete(context, { vm: { id: '11' }, force: true });
    expect(target.folder).toBe("[datastore (1)] it's $(touch pwned)");
    expect(plan.steps.map((step) => step.id)).toEqual(['destroy-vm', 'remove-folder']);
    expect(plan.steps[1]?.action).toEqual({ kind: 'ssh', command: `rm -rf -- '${volumes}/datastore (1)/it'\\''s $(touch pwned)'; if [ -e '${volumes}/datastore (1)/it'\\''s $(touch pwned)' ]; then ls -A '${volumes}/datastore (1)/it'\\''s $(touch pwned)'; exit 1; fi` });
    await executePlan(plan);
    expect(existsSync(join(volumes, 'datastore (1)', "it's $(touch pwned)"))).toBe(false);
    expect(existsSync(join(volumes, 'datastore (1)', 'twin'))).toBe(true);
    expect(existsSync(join(work, 'pwned'))).toBe(false);
  });
});
