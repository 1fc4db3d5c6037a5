// `vm list` at real-host weight: every VM carries KBs of cloud-init guestinfo in extraConfig, and
// the list reads only the markers it shows, by key (config.extraConfig["ceso.managed"], ...), as
// a real ESXi/vCenter answers them (see test/testbed/go/src/cesotestbed/sim/keyed.go). A host
// that refuses keyed paths gets the whole extraConfig, asked once per process. The results match
// the whole-extraConfig read and the SSH path's. Needs the built CLI (npm run build).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuiltCli, runCli, sshConfig, withoutPath, workspace, type CesoWorkspace, type CliResult } from '../support/cli.js';
import { startSimulator, type PropertyRequest, type Simulator } from '../support/simulator.js';
import { startSshServer, type SshServer } from '../support/sshd.js';
import { listVms } from '../../src/esxi/ops/inventory.js';
import { VimClient } from '../../src/esxi/vim/client.js';

type Json = Record<string, unknown>;

const USERDATA_CHARS = 4096;
const METADATA_CHARS = 1024;
const MARKER_PATHS = ['ceso.managed', 'ceso.expiresAt', 'ceso.linked', 'ceso.pool', 'ceso.poolState'].map((key) => `config.extraConfig["${key}"]`);

describe('vm list reads only the markers it shows', { timeout: 180_000 }, () => {
  let sim: Simulator;
  let sshd: SshServer;
  let ws: CesoWorkspace;
  let env: Record<string, string>;

  const ceso = (...args: string[]): Promise<CliResult> => runCli(args, { env, timeoutMs: 90_000 });
  const ok = (result: CliResult): CliResult => {
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    return result;
  };
  const list = async (): Promise<Json[]> => ok(await ceso('vm', 'list', '--json', '--via', 'api')).json<Json[]>();
  /** The VirtualMachine reads the simulator answered since the last clear. */
  const vmReads = async (): Promise<PropertyRequest[]> => (await sim.propertyRequests()).filter((request) => request.paths.VirtualMachine !== undefined);

  beforeAll(async () => {
    requireBuiltCli();
    sim = await startSimulator({ mode: 'esx', vms: 3 });
    sshd = await startSshServer({ sim });
    ws = workspace();
    ws.writeConfig(sshConfig(sim, sshd));
    env = { ...ws.env, SIM_PASSWORD: sim.password };
    await sim.control('extra-config', {
      set: { 'guestinfo.userdata.encoding': 'gzip+base64', 'guestinfo.metadata.encoding': 'gzip+base64' },
      random: { 'guestinfo.userdata': USERDATA_CHARS, 'guestinfo.metadata': METADATA_CHARS },
    });
    await sim.control('extra-config', {
      vms: ['vm-0001'],
      set: { 'ceso.managed': 'true', 'ceso.expiresAt': '2030-01-02T03:04:05.000Z', 'ceso.linked': 'true', 'ceso.pool': 'web', 'ceso.poolState': 'ready', 'ceso.leaseHolder': 'ci-7' },
    });
    // a pool state without a pool is shown as none, whichever way it is read
    await sim.control('extra-config', { vms: ['vm-0002'], set: { 'ceso.managed': 'true', 'ceso.poolState': 'leased' } });
  }, 120_000);

  afterAll(async () => {
    await sshd?.stop();
    await sim?.stop();
    ws?.cleanup();
  });

  it('asks for the markers by key and never for the whole extraConfig; the guestinfo stays on the host', async () => {
    await sim.control('property-requests');
    const vms = await list();
    const reads = await vmReads();
    expect(reads).toHaveLength(1);
    const [read] = reads as [PropertyRequest];
    expect(read.paths.VirtualMachine).toEqual(expect.arrayContaining(MARKER_PATHS));
    expect(read.paths.VirtualMachine?.filter((path) => path.startsWith('config.extraConfig'))).toEqual(MARKER_PATHS);
    expect(vms.length).toBeGreaterThanOrEqual(4);

    await sim.control('keyed-paths', { mode: 'refuse' });
    try {
      await sim.control('property-requests');
      await list();
      const [refused, whole] = (await vmReads()) as [PropertyRequest, PropertyRequest];
      expect(refused.paths.VirtualMachine).toEqual(expect.arrayContaining(MARKER_PATHS));
      expect(whole.paths.VirtualMachine).toContain('config.extraConfig');
      // every VM carries 5 KB of guestinfo: the keyed answer is short of all of it
      expect(whole.responseBytes - read.responseBytes).toBeGreaterThan(vms.length * (USERDATA_CHARS + METADATA_CHARS));
      expect(read.responseBytes).toBeLessThan(whole.responseBytes / 3);
    } finally {
      await sim.control('keyed-paths', { mode: 'support' });
    }
  });

  it('shows the same markers as the whole extraConfig gives, and as the SSH path', async () => {
    const keyed = await list();
    expect(keyed.find((vm) => vm.name === 'vm-0001')).toMatchObject({ managed: true, expiresAt: '2030-01-02T03:04:05.000Z', linked: true, pool: 'web', poolState: 'ready' });
    expect(keyed.find((vm) => vm.name === 'vm-0002')).toMatchObject({ managed: true, expiresAt: null, linked: false, pool: null, poolState: null });
    expect(keyed.find((vm) => vm.name === 'vm-0003')).toMatchObject({ managed: false, expiresAt: null, linked: false, pool: null, poolState: null });
    for (const mode of ['refuse', 'legacy']) {
      await sim.control('keyed-paths', { mode });
      try {
        expect(await list(), mode).toEqual(keyed);
      } finally {
        await sim.control('keyed-paths', { mode: 'support' });
      }
    }
    const overSsh = ok(await ceso('vm', 'list', '--json', '--via', 'ssh')).json<Json[]>();
    expect(overSsh.map(withoutPath)).toEqual(keyed.map(withoutPath));
  });

  it('vm info still reads the whole extraConfig: guestinfo names and sizes, every marker', async () => {
    const info = ok(await ceso('vm', 'info', 'vm-0001', '--json', '--via', 'api')).json<Json>();
    expect(info.guestinfo).toEqual(
      expect.arrayContaining([
        { key: 'guestinfo.metadata', bytes: METADATA_CHARS },
        { key: 'guestinfo.userdata', bytes: USERDATA_CHARS },
      ]),
    );
    expect(info.markers).toMatchObject({ 'ceso.leaseHolder': 'ci-7', 'ceso.pool': 'web' });
  });

  it('falls back once per process: a host that refuses keyed paths (or answers missingSet) is not asked again', async () => {
    for (const mode of ['refuse', 'legacy']) {
      await sim.control('keyed-paths', { mode });
      const client = VimClient.create({ host: sim.host, port: sim.port, user: sim.user, password: sim.password, insecure: false, thumbprint: sim.thumbprintSha256, timeoutMs: 30_000, connectTimeoutMs: 10_000 });
      try {
        await sim.control('property-requests');
        const first = await listVms(client);
        const second = await listVms(client);
        expect(second, mode).toEqual(first);
        expect(first.find((vm) => vm.name === 'vm-0001'), mode).toMatchObject({ managed: true, pool: 'web', poolState: 'ready' });
        const asked = (await vmReads()).map((read) => read.paths.VirtualMachine?.includes('config.extraConfig') === true);
        expect(asked, mode).toEqual([false, true, true]);
      } finally {
        client.close();
        await sim.control('keyed-paths', { mode: 'support' });
      }
    }
  });
});
