// Tests of the test bed itself: the simulated ESXi host / vCenter (test/testbed/bin/vcsim),
// its corrections of vcsim, the control API and the oracle. Real processes, no mocks.
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PASSWORD, TESTBED_BIN, startSimulator, type Simulator } from '../support/simulator.js';

interface ListedVm {
  name: string;
  id: string;
  uuid: string;
  powerState: string;
  cpu: number;
  memoryMB: number;
  ip: string | null;
  guestId: string;
  vmxPath: string;
  managed: boolean;
  extraConfig: Record<string, string | number>;
  annotation: string;
}

interface VmDetail extends ListedVm {
  disks: { file: string; capacityKB: number; thin: boolean; controllerKey: number; unitNumber: number }[];
  nics: { network: string; mac: string; type: string }[];
  firmware: string;
  datastore: string;
  hostName: string;
  toolsRunningStatus: string;
  guestinfo: Record<string, unknown>;
}

interface Datastore {
  name: string;
  capacity: number;
  freeSpace: number;
  url: string;
}

interface CloneResult {
  ok: boolean;
  id: string | null;
  fault: string | null;
}

const GB = 1024 ** 3;

/** One raw SOAP call (for what the oracle deliberately cannot do, e.g. a wrong password). */
function soap(sim: Simulator, body: string): Promise<{ status: number; text: string }> {
  const envelope = `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>${body}</soapenv:Body></soapenv:Envelope>`;
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: sim.host,
        port: sim.port,
        path: '/sdk',
        method: 'POST',
        agent: false,
        rejectUnauthorized: false,
        headers: { 'content-type': 'text/xml; charset="utf-8"', soapaction: '"urn:vim25/7.0.3.0"' },
        timeout: 20_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(envelope);
  });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('esx simulator', () => {
  let sim: Simulator;

  beforeAll(async () => {
    sim = await startSimulator({ mode: 'esx', vms: 4 });
  }, 60_000);

  afterAll(async () => {
    await sim?.stop();
  });

  it('announces itself as a standalone host on loopback', () => {
    expect(sim.apiType).toBe('HostAgent');
    expect(sim.mode).toBe('esx');
    expect(sim.host).toBe('127.0.0.1');
    expect(sim.url).toBe(`https://127.0.0.1:${sim.port}/sdk`);
    expect(sim.hostPort).toBe(`127.0.0.1:${sim.port}`);
    expect(sim.thumbprintSha1).toMatch(/^([0-9A-F]{2}:){19}[0-9A-F]{2}$/);
    expect(sim.thumbprintSha256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(sim.datastoreDir).toBe(path.join(sim.dir, 'volumes', 'datastore1'));
    expect(sim.volumesRoot).toBe(path.join(sim.dir, 'volumes'));
    expect(sim.password).toBe(DEFAULT_PASSWORD);
  });

  it('lists the VMs and the template through the oracle', async () => {
    const vms = await sim.oracle<ListedVm[]>('list');
    expect(vms.map((v) => v.name)).toEqual(['ubuntu-22.04-template', 'vm-0001', 'vm-0002', 'vm-0003', 'vm-0004']);
    const tmpl = vms.find((v) => v.name === 'ubuntu-22.04-template');
    expect(tmpl).toMatchObject({ powerState: 'poweredOff', cpu: 2, memoryMB: 2048, guestId: 'ubuntu64Guest', ip: null, managed: false });
    expect(tmpl?.vmxPath).toBe('[datastore1] ubuntu-22.04-template/ubuntu-22.04-template.vmx');
    expect(Object.keys(tmpl?.extraConfig ?? {}).filter((k) => k.startsWith('ceso.'))).toEqual([]);
    expect(vms.some((v) => v.powerState === 'poweredOn')).toBe(true);
    expect(vms.some((v) => v.name !== tmpl?.name && v.powerState === 'poweredOff')).toBe(true);
    for (const v of vms) {
      if (v.powerState === 'poweredOn') expect(v.ip).toMatch(/^198\.51\.100\.\d+$/);
      else expect(v.ip).toBeNull();
    }
  });

  it('has a template shaped like a cloud image VM', async () => {
    const t = await sim.oracle<VmDetail>('vm', 'ubuntu-22.04-template');
    expect(t.firmware).toBe('efi');
    expect(t.datastore).toBe('datastore1');
    expect(t.disks).toHaveLength(1);
    expect(t.disks[0]).toMatchObject({ file: '[datastore1] ubuntu-22.04-template/ubuntu-22.04-template.vmdk', capacityKB: 10 * 1024 * 1024, thin: true });
    expect(t.nics).toHaveLength(1);
    expect(t.nics[0]).toMatchObject({ network: 'VM Network', type: 'vmxnet3' });
    expect(t.nics[0]?.mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    const flat = statSync(path.join(sim.datastoreDir, 'ubuntu-22.04-template', 'ubuntu-22.04-template-flat.vmdk'));
    expect(flat.size).toBe(10 * GB);
    expect(flat.blocks * 512).toBeLessThan(1024 * 1024); // sparse
    const desc = readFileSync(path.join(sim.datastoreDir, 'ubuntu-22.04-template', 'ubuntu-22.04-template.vmdk'), 'utf8');
    expect(desc).toContain('RW 20971520 VMFS "ubuntu-22.04-template-flat.vmdk"');
    expect(desc).toContain('ddb.thinProvisioned = "1"');
  });

  it('keeps real .vmx files that match the inventory', async () => {
    const v = await sim.oracle<VmDetail>('vm', 'vm-0001');
    const vmx = readFileSync(path.join(sim.datastoreDir, 'vm-0001', 'vm-0001.vmx'), 'utf8');
    expect(vmx).toContain('displayName = "vm-0001"');
    expect(vmx).toContain(`memSize = "${v.memoryMB}"`);
    expect(vmx).toContain(`numvcpus = "${v.cpu}"`);
    expect(vmx).toContain('scsi0:0.fileName = "vm-0001.vmdk"');
    expect(vmx).toContain('ethernet0.networkName = "VM Network"');
    expect(vmx).toContain(`ethernet0.generatedAddress = "${v.nics[0]?.mac}"`);
    expect(vmx).not.toContain('govcsim');
    const files = await sim.listFiles();
    expect(files).toEqual(expect.arrayContaining(['vm-0001/vm-0001.vmx', 'vm-0001/vm-0001.vmdk', 'vm-0001/vm-0001-flat.vmdk']));
    expect(files).toEqual([...files].sort());
  });

  it('reports guest identity for powered-on VMs only', async () => {
    const on = await sim.oracle<VmDetail>('vm', 'vm-0001');
    expect(on.powerState).toBe('poweredOn');
    expect(on.toolsRunningStatus).toBe('guestToolsRunning');
    expect(on.hostName).toBe('vm-0001');
    expect(on.ip).toMatch(/^198\.51\.100\.\d+$/);
    const off = await sim.oracle<VmDetail>('vm', 'vm-0002');
    expect(off.powerState).toBe('poweredOff');
    expect(off.ip).toBeNull();
    expect(off.toolsRunningStatus).toBe('guestToolsNotRunning');
  });

  it('refuses CloneVM_Task as a real standalone host does', async () => {
    const res = await sim.oracle<CloneResult>('clone-raw', 'ubuntu-22.04-template', 'clone-1');
    expect(res).toMatchObject({ ok: false, fault: 'NotSupported' });
    const vms = await sim.oracle<ListedVm[]>('list');
    expect(vms.map((v) => v.name)).not.toContain('clone-1');
  });

  it('answers a wrong password with InvalidLogin and no session with NotAuthenticated', async () => {
    const login = await soap(
      sim,
      `<Login xmlns="urn:vim25"><_this type="SessionManager">ha-sessionmgr</_this><userName>root</userName><password>wrong</password></Login>`,
    );
    expect(login.status).toBe(500);
    expect(login.text).toContain('xsi:type="InvalidLogin"');
    expect(login.text).toContain('<faultstring>Cannot complete login due to an incorrect user name or password.</faultstring>');
    const ok = await soap(
      sim,
      `<Login xmlns="urn:vim25"><_this type="SessionManager">ha-sessionmgr</_this><userName>root</userName><password>${DEFAULT_PASSWORD}</password></Login>`,
    );
    expect(ok.status).toBe(200);
    await expect(sim.oracle('--password', 'wrong', 'list')).rejects.toThrow(/InvalidLogin/);
    const anon = await soap(
      sim,
      `<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">ha-property-collector</_this><specSet><propSet><type>VirtualMachine</type><pathSet>name</pathSet></propSet><objectSet><obj type="Folder">ha-folder-root</obj></objectSet></specSet><options/></RetrievePropertiesEx>`,
    );
    expect(anon.status).toBe(500);
    expect(anon.text).toContain('xsi:type="NotAuthenticated"');
  });

  it('injects faults and delays, and changes the datastore space', async () => {
    await sim.control('fail', { method: 'CreateContainerView', fault: 'SystemError', times: 1 });
    await expect(sim.oracle('list')).rejects.toThrow(/SystemError/);
    await expect(sim.oracle<ListedVm[]>('list')).resolves.toHaveLength(5); // times: 1

    await sim.control('delay', { method: 'CreateContainerView', ms: 700 });
    const t0 = Date.now();
    await sim.oracle('list');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(700);

    await sim.control('datastore', { capacityGB: 500, freeGB: 12.5 });
    let ds = await sim.oracle<Datastore[]>('datastores');
    expect(ds).toHaveLength(1);
    expect(ds[0]).toMatchObject({ name: 'datastore1', capacity: 500 * GB, freeSpace: 12.5 * GB });

    await sim.control('fail', { method: 'CreateContainerView', fault: 'NotSupported', times: -1 });
    await sim.control('reset');
    const t1 = Date.now();
    await expect(sim.oracle<ListedVm[]>('list')).resolves.toHaveLength(5);
    expect(Date.now() - t1).toBeLessThan(700);
    ds = await sim.oracle<Datastore[]>('datastores');
    expect(ds[0]).toMatchObject({ capacity: 1000 * GB, freeSpace: 900 * GB });

    await expect(sim.control('fail', { method: 'X', fault: 'NoSuchFault' })).rejects.toThrow(/HTTP 400/);
  });
});

describe('vpx simulator', () => {
  let sim: Simulator;

  beforeAll(async () => {
    sim = await startSimulator({ mode: 'vpx', vms: 1 });
  }, 60_000);

  afterAll(async () => {
    await sim?.stop();
  });

  it('is a vCenter that clones natively', async () => {
    expect(sim.apiType).toBe('VirtualCenter');
    const res = await sim.oracle<CloneResult>('clone-raw', 'ubuntu-22.04-template', 'clone-1');
    expect(res).toMatchObject({ ok: true, fault: null });
    const c = await sim.oracle<VmDetail>('vm', 'clone-1');
    expect(c).toMatchObject({ cpu: 2, memoryMB: 2048, firmware: 'efi', guestId: 'ubuntu64Guest', powerState: 'poweredOff' });
    expect(c.disks).toHaveLength(1);
    const vmxFile = path.join(sim.volumesRoot, c.vmxPath.replace(/^\[([^\]]+)\] /, '$1/'));
    expect(readFileSync(vmxFile, 'utf8')).toContain('displayName = "clone-1"');
  });

  it('fails the clone task when told to', async () => {
    await sim.control('fail', { method: 'CloneVM_Task', fault: 'InvalidState' });
    const res = await sim.oracle<CloneResult>('clone-raw', 'ubuntu-22.04-template', 'clone-2');
    expect(res).toMatchObject({ ok: false, fault: 'InvalidState' });
    const names = (await sim.oracle<ListedVm[]>('list')).map((v) => v.name);
    expect(names).not.toContain('clone-2');
  });
});

describe('Go unit tests of the test bed', () => {
  // vmx rendering, YAML/cloud-init parsing, and the corrections of vcsim exercised with
  // govmomi (API clone by hand, re-IP, register/reload from a .vmx, linked clones, destroy, ...)
  it('pass', async () => {
    const script = path.resolve(TESTBED_BIN, '../build.sh');
    const out = await new Promise<string>((resolve, reject) => {
      execFile('bash', [script, '--test', 'cesotestbed/vmx', 'cesotestbed/sim/...'], { timeout: 280_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`go test failed: ${err.message}\n${stdout}\n${stderr}`));
        else resolve(stdout);
      });
    });
    expect(out).toMatch(/ok\s+cesotestbed\/sim\s/);
    expect(out).toMatch(/ok\s+cesotestbed\/vmx\s/);
  }, 300_000);
});

describe('lifecycle', () => {
  it('stop() kills the simulator and removes its directory', async () => {
    const sim = await startSimulator({ vms: 0, template: null });
    expect(existsSync(sim.datastoreDir)).toBe(true);
    expect(processAlive(sim.pid)).toBe(true);
    expect((await sim.oracle<ListedVm[]>('list')).length).toBe(0);
    await sim.stop();
    await sim.stop(); // idempotent
    expect(existsSync(sim.dir)).toBe(false);
    expect(processAlive(sim.pid)).toBe(false);
  });

  it('the simulator exits when its stdin closes', async () => {
    const sim = await startSimulator({ vms: 0, template: null });
    try {
      // a second simulator started by hand, holding only a pipe
      const child = spawn(path.join(TESTBED_BIN, 'vcsim'), ['--dir', path.join(sim.dir, 'other'), '--vms', '0', '--template', ''], {
        stdio: ['pipe', 'pipe', 'ignore'],
        env: { ...process.env, VCSIM_PASSWORD: 'pw' },
      });
      const line = await new Promise<string>((resolve, reject) => {
        let buf = '';
        child.stdout.setEncoding('utf8');
        child.stdout.on('data', (d: string) => {
          buf += d;
          if (buf.includes('\n')) resolve(buf);
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}`)));
        setTimeout(() => reject(new Error('no start line')), 20_000);
      });
      expect(JSON.parse(line)).toMatchObject({ mode: 'esx', vms: 0, template: null, user: 'root' });
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.stdin.end();
      await expect(exited).resolves.toBe(0);
    } finally {
      await sim.stop();
    }
  });

  it('a failed start rejects and leaves nothing behind', async () => {
    await expect(startSimulator({ vms: -1 })).rejects.toThrow(/--vms must be >= 0/);
  });
});
