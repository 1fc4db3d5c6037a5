// `template import` against the simulator, which the test bed corrects to store uploaded disks
// (decoding the streamOptimized stream into the datastore's extent), to start leases
// `initializing` and to expire them without progress, and which keeps vcsim's refusal of the
// serial port of Ubuntu's OVF (OvfUnsupportedType) as one case. Fixtures are built per run:
// an OVF modelled on Ubuntu's and a VMDK made by qemu-img (test/support/ova.ts).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { copyFile, readFile, truncate } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSimulatorWorkspace, runCli, type SimulatorWorkspace } from '../support/cli.js';
import { buildOva, readRange, serveFiles, sha256File, tarOf, type FileServer, type OvaFixture } from '../support/ova.js';
import type { Simulator } from '../support/simulator.js';

interface OracleVm {
  name: string;
  powerState: string;
  extraConfig: Record<string, string>;
  disks: Array<{ file: string; capacityKB: number; thin: boolean }>;
  nics: Array<{ network: string; mac: string; type: string }>;
}

interface ImportResult {
  name: string;
  id: string;
  powerState: string;
  guestId: string;
  bytesUploaded: number;
  dropped: Array<{ name: string; kind: string; reason: string }>;
  disks: Array<{ file: string; capacityGB: number; thin: boolean }>;
  via: string;
  durationMs: number;
  markers: Record<string, string>;
}

/** The datastore extent backing a "[datastore1] dir/x.vmdk" disk: the -flat file its descriptor names. */
async function extentOf(sim: Simulator, datastorePath: string): Promise<string> {
  const relative = datastorePath.replace(/^\[[^\]]+\]\s*/, '');
  const descriptor = await readFile(path.join(sim.datastoreDir, relative), 'utf8');
  const extent = /^RW \d+ \w+ "([^"]+)"/m.exec(descriptor)?.[1];
  if (extent === undefined) throw new Error(`no extent in ${relative}:\n${descriptor}`);
  return path.join(sim.datastoreDir, path.dirname(relative), extent);
}

async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('template import on the standalone ESXi simulator', () => {
  let bed: SimulatorWorkspace;
  let sim: Simulator;
  let env: Record<string, string>;
  let fixture: OvaFixture;
  let work: string;
  let server: FileServer;
  const ceso = (...args: string[]) => runCli(args, { env, timeoutMs: 120_000 });
  const state = async (): Promise<{ files: string[]; vms: string[] }> => ({
    files: await sim.listFiles(),
    vms: ((await sim.oracle<Array<{ name: string }>>('list')) ?? []).map((vm) => vm.name).sort(),
  });

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'ceso-ova-'));
    [bed, fixture] = await Promise.all([openSimulatorWorkspace({ mode: 'esx', vms: 1 }), buildOva(work, { capacityMiB: 64, dataMiB: 8 })]);
    ({ sim, env } = bed);
    const half = 64 * 1024 + fixture.vmdkBytes / 2;
    server = await serveFiles(
      { '/images/ubuntu.ova': fixture.ova, '/images/stall.ova': fixture.ova, '/images/stall-then-ctrl-c.ova': fixture.ova },
      { stallAfter: { '/images/stall.ova': half, '/images/stall-then-ctrl-c.ova': half } },
    );
  }, 180_000);

  afterAll(async () => {
    await server?.close();
    await bed?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('plans the import with reads only: hardware, disks with sizes, network mapping, what the host refuses', async () => {
    const before = await state();
    const result = await ceso('template', 'import', fixture.ova, '--name', 'ubuntu-plan', '--dry-run', '--json');
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const { plan } = result.json<{ plan: { steps: Array<{ id: string; method?: string }>; review: { import: Record<string, unknown> }; warnings: string[] } }>();
    expect(plan.steps.map((step) => step.id)).toEqual(['import-vapp', 'upload-disks', 'complete-lease', 'mark-template']);
    expect(plan.review.import).toMatchObject({
      source: 'ubuntu-22.04-server-cloudimg-amd64.ova',
      name: 'ubuntu-plan',
      datastore: 'datastore1',
      hardware: { guestId: 'ubuntu64Guest', cpu: 2, memoryMB: 1024 },
      disks: [{ file: 'ubuntu-jammy-22.04-cloudimg.vmdk', capacityGB: 0.1, uploadBytes: fixture.vmdkBytes, thin: true }],
      networks: [{ ovf: 'VM Network', portGroup: 'VM Network' }],
      dropped: [{ name: 'serial0', kind: 'serial port' }],
      vAppProperties: { mapped: [], unmapped: ['instance-id', 'hostname', 'seedfrom', 'public-keys', 'user-data', 'password'] },
    });
    expect(plan.warnings.join('\n')).toMatch(/serial0 \(serial port\): left out/);
    expect(await state()).toEqual(before);
  });

  it('imports an .ova: the disk lands thin on the datastore byte for byte, the serial port is named as dropped', async () => {
    const result = await ceso('template', 'import', fixture.ova, '--name', 'ubuntu-22.04', '--json');
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const vm = result.json<ImportResult>();
    expect(vm).toMatchObject({ name: 'ubuntu-22.04', powerState: 'poweredOff', guestId: 'ubuntu64Guest', bytesUploaded: fixture.vmdkBytes, via: 'api' });
    expect(vm.dropped).toEqual([{ name: 'serial0', kind: 'serial port', reason: expect.any(String) }]);
    expect(vm.markers).toMatchObject({ 'ceso.template': 'true', 'ceso.importedFrom': 'ubuntu-22.04-server-cloudimg-amd64.ova' });

    const oracle = await sim.oracle<OracleVm>('vm', 'ubuntu-22.04');
    expect(oracle.powerState).toBe('poweredOff');
    expect(oracle.disks).toHaveLength(1);
    expect(oracle.disks[0]).toMatchObject({ capacityKB: fixture.capacityBytes / 1024, thin: true });
    expect(oracle.nics.map((nic) => nic.network)).toEqual(['VM Network']);
    // no OVF environment, no vApp property mapping: nothing competes with ceso's guestinfo
    expect(Object.keys(oracle.extraConfig).filter((key) => /ovfEnv|^(hostname|user-data|instance-id|public-keys|password|seedfrom)$/.test(key))).toEqual([]);

    const extent = await extentOf(sim, oracle.disks[0]!.file);
    expect(await sha256File(extent)).toBe(fixture.rawSha256);
  });

  it('makes a working template: vm create copies it and template list shows it fit, with its source', async () => {
    const created = await ceso('vm', 'create', 'from-import', '--template', 'ubuntu-22.04', '--no-power-on', '--json');
    expect(created.code, created.stdout + created.stderr).toBe(0);
    const listed = await ceso('template', 'list', '--json');
    const templates = listed.json<Array<{ name: string; fit: boolean; importedFrom: string | null }>>();
    expect(templates.find((entry) => entry.name === 'ubuntu-22.04')).toMatchObject({ fit: true, importedFrom: 'ubuntu-22.04-server-cloudimg-amd64.ova' });
    expect(templates.some((entry) => entry.name === 'from-import')).toBe(false);
    const copy = await sim.oracle<OracleVm>('vm', 'from-import');
    const extent = await extentOf(sim, copy.disks[0]!.file);
    expect(await readRange(extent, 0, 1024 * 1024)).toEqual(await readRange(fixture.raw, 0, 1024 * 1024));
    expect((await ceso('vm', 'delete', 'from-import', '--yes', '--json')).code).toBe(0);
  });

  it('imports an .ovf with its files beside it', async () => {
    const result = await ceso('template', 'import', fixture.ovf, '--name', 'from-ovf', '--json');
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.json<ImportResult>()).toMatchObject({ bytesUploaded: fixture.vmdkBytes, markers: { 'ceso.importedFrom': 'ubuntu-jammy-22.04-cloudimg.ovf' } });
    const oracle = await sim.oracle<OracleVm>('vm', 'from-ovf');
    expect(await sha256File(await extentOf(sim, oracle.disks[0]!.file))).toBe(fixture.rawSha256);
  });

  it('streams an .ova from an http:// URL straight to the host (no copy on the local disk)', async () => {
    const url = `${server.url}/images/ubuntu.ova`;
    const result = await ceso('template', 'import', `http://user:pa55word@${url.slice('http://'.length)}?token=abc`, '--name', 'from-url', '--json');
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const vm = result.json<ImportResult>();
    expect(vm.markers['ceso.importedFrom']).toBe(url);
    expect(result.stdout + result.stderr).not.toMatch(/pa55word|token=abc/);
    const oracle = await sim.oracle<OracleVm>('vm', 'from-url');
    expect(await sha256File(await extentOf(sim, oracle.disks[0]!.file))).toBe(fixture.rawSha256);
  });

  describe('bad input and faults: a clear error, and nothing left on the host', () => {
    const refuse = async (args: string[], code: string, exit: number, message: RegExp): Promise<void> => {
      const before = await state();
      const result = await ceso('template', 'import', ...args, '--json');
      expect(result.code, result.stdout + result.stderr).toBe(exit);
      const { error } = result.json<{ error: { code: string; message: string; hint?: string } }>();
      expect(error.code).toBe(code);
      expect(error.message).toMatch(message);
      expect(await state()).toEqual(before);
    };

    it('refuses a truncated OVA, a tar without an OVF, and an OVF naming a file it does not hold (exit 2)', async () => {
      const truncated = path.join(work, 'truncated.ova');
      await copyFile(fixture.ova, truncated);
      await truncate(truncated, 20_000);
      await refuse([truncated, '--name', 'bad1'], 'INVALID_INPUT', 2, /damaged|truncated/);
      const garbage = path.join(work, 'garbage.ova');
      writeFileSync(garbage, Buffer.alloc(4096, 7));
      await refuse([garbage, '--name', 'bad2'], 'INVALID_INPUT', 2, /damaged|not a tar/);
      const noOvf = await tarOf(path.join(work, 'no-ovf.ova'), fixture.dir, [path.basename(fixture.vmdk)]);
      await refuse([noOvf, '--name', 'bad3'], 'INVALID_INPUT', 2, /no \.ovf descriptor/);
      const noDisk = await tarOf(path.join(work, 'no-disk.ova'), fixture.dir, [path.basename(fixture.ovf)]);
      await refuse([noDisk, '--name', 'bad4'], 'INVALID_INPUT', 2, /names ubuntu-jammy-22\.04-cloudimg\.vmdk, which .* does not hold/);
    });

    it('refuses a disk that is not streamOptimized and a package whose disk does not match its manifest', async () => {
      const dir = mkdtempSync(path.join(work, 'flat-'));
      await copyFile(fixture.ovf, path.join(dir, path.basename(fixture.ovf)));
      await copyFile(fixture.raw, path.join(dir, path.basename(fixture.vmdk)));
      await refuse([path.join(dir, path.basename(fixture.ovf)), '--name', 'bad5'], 'INVALID_INPUT', 2, /not a VMDK/);

      // a manifest that disagrees with the disk: found after the upload, the VM is deleted again
      const tampered = mkdtempSync(path.join(work, 'tampered-'));
      for (const name of [fixture.ovf, fixture.vmdk]) await copyFile(name, path.join(tampered, path.basename(name)));
      const manifest = (await readFile(fixture.vmdk.replace(/\.vmdk$/, '.mf'), 'utf8')).replace(/(vmdk\)= )([0-9a-f])/, (_m, head: string, digit: string) => `${head}${digit === '0' ? '1' : '0'}`);
      writeFileSync(path.join(tampered, path.basename(fixture.vmdk).replace(/\.vmdk$/, '.mf')), manifest);
      await refuse([path.join(tampered, path.basename(fixture.ovf)), '--name', 'bad6'], 'INVALID_INPUT', 2, /does not match the package's manifest/);

      // a damaged compressed grain: the host refuses the stream, the VM is deleted again
      const broken = mkdtempSync(path.join(work, 'broken-'));
      await copyFile(fixture.ovf, path.join(broken, path.basename(fixture.ovf)));
      const bytes = await readFile(fixture.vmdk);
      for (let index = 70_000; index < 70_064; index += 1) bytes[index] = 0xaa;
      writeFileSync(path.join(broken, path.basename(fixture.vmdk)), bytes);
      await refuse([path.join(broken, path.basename(fixture.ovf)), '--name', 'bad6b'], 'HOST_FAULT', 8, /refused the upload|lease failed: .*bad compressed data/);
    });

    it('a missing file and a URL answering 404 are exit 3; an unreachable URL is exit 5', async () => {
      await refuse([path.join(work, 'nope.ova'), '--name', 'bad7'], 'NOT_FOUND', 3, /no such file/);
      await refuse([`${server.url}/images/missing.ova`, '--name', 'bad8'], 'NOT_FOUND', 3, /HTTP 404/);
      // a source that does not answer is no reason to leave the API for SSH
      await refuse([`http://127.0.0.1:${await unusedPort()}/x.ova`, '--name', 'bad9'], 'SOURCE_UNREACHABLE', 5, /connection refused/);
    });

    it('a name that exists is exit 4 VM_EXISTS; a disk larger than the free space is exit 4 INSUFFICIENT_SPACE, before any upload', async () => {
      await refuse([fixture.ova, '--name', 'ubuntu-22.04'], 'VM_EXISTS', 4, /already exists/);
      await sim.control('datastore', { freeGB: 0.001 });
      try {
        await refuse([fixture.ova, '--name', 'too-big'], 'INSUFFICIENT_SPACE', 4, /free/);
      } finally {
        await sim.control('reset');
      }
    });

    it('a lease that expires during a stalled download is TIMEOUT (exit 8), with the half-made VM deleted', async () => {
      await sim.control('nfc' as never, { leaseTimeoutSeconds: 2 });
      try {
        await refuse([`${server.url}/images/stall.ova`, '--name', 'stalled'], 'TIMEOUT', 8, /lease|stalled/);
      } finally {
        await sim.control('nfc' as never, { leaseTimeoutSeconds: 300 });
      }
    });

    it('Ctrl-C during the upload aborts the lease and deletes the half-made VM', async () => {
      const before = await state();
      let child: { kill(signal: NodeJS.Signals): boolean } | undefined;
      const running = runCli(['template', 'import', `${server.url}/images/stall-then-ctrl-c.ova`, '--name', 'interrupted', '--json'], {
        env,
        timeoutMs: 60_000,
        onSpawn: (spawned) => (child = spawned),
      });
      // the download stalls half-way through the disk: the upload is under way
      for (let waited = 0; (server.served.get('/images/stall-then-ctrl-c.ova') ?? 0) < 64 * 1024 + fixture.vmdkBytes / 2 && waited < 20_000; waited += 50) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      child?.kill('SIGINT');
      const result = await running;
      expect(result.code, result.stdout + result.stderr).toBe(8);
      expect(result.json<{ error: { code: string; details: { cleanedUp: boolean } } }>().error).toMatchObject({ code: 'INTERRUPTED', details: { cleanedUp: true } });
      expect(await state()).toEqual(before);
    });

    it('an ImportVApp the host fails changes nothing', async () => {
      await sim.control('fail', { method: 'ImportVApp', fault: 'InvalidState' });
      await refuse([fixture.ova, '--name', 'fails'], 'CONFLICT', 4, /ImportVApp: InvalidState/);
    });

    it('over SSH the import is NOT_SUPPORTED, naming the API', async () => {
      const result = await ceso('template', 'import', fixture.ova, '--name', 'over-ssh', '--via', 'ssh', '--json');
      expect(result.code).toBe(8);
      expect(result.json<{ error: { code: string; message: string; hint: string } }>().error).toMatchObject({ code: 'NOT_SUPPORTED', message: expect.stringMatching(/vSphere API/), hint: expect.stringMatching(/--via api/) });
    });
  });
});

describe('template import on the vCenter simulator', () => {
  let bed: SimulatorWorkspace;
  let work: string;
  let fixture: OvaFixture;

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'ceso-ova-vpx-'));
    [bed, fixture] = await Promise.all([openSimulatorWorkspace({ mode: 'vpx', vms: 1 }), buildOva(work, { capacityMiB: 32, dataMiB: 4 })]);
  }, 180_000);

  afterAll(async () => {
    await bed?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('imports into the cluster with the vApp options removed, and VMs cloned from it do not inherit its markers', async () => {
    const ceso = (...args: string[]) => runCli(args, { env: bed.env, timeoutMs: 120_000 });
    const dry = await ceso('template', 'import', fixture.ova, '--name', 'jammy', '--dry-run', '--json');
    const steps = dry.json<{ plan: { steps: Array<{ id: string; description: string; arguments?: { spec?: Record<string, unknown> } }> } }>().plan.steps;
    expect(steps.find((step) => step.id === 'mark-template')?.arguments?.spec).toMatchObject({ vAppConfigRemoved: true });
    const result = await ceso('template', 'import', fixture.ova, '--name', 'jammy', '--json');
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const oracle = await bed.sim.oracle<OracleVm>('vm', 'jammy');
    expect(oracle.extraConfig).toMatchObject({ 'ceso.template': 'true', 'ceso.importedFrom': 'ubuntu-22.04-server-cloudimg-amd64.ova' });
    expect(await sha256File(await extentOf(bed.sim, oracle.disks[0]!.file))).toBe(fixture.rawSha256);
    const created = await ceso('vm', 'create', 'from-jammy', '--template', 'jammy', '--no-power-on', '--json');
    expect(created.code, created.stdout + created.stderr).toBe(0);
    const child = await bed.sim.oracle<OracleVm>('vm', 'from-jammy');
    expect(child.extraConfig['ceso.template']).toBe('jammy');
    expect(child.extraConfig['ceso.importedFrom']).toBeUndefined();
  });
});
