import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, simulatorConfig, workspace, openSimulatorWorkspace, type SimulatorWorkspace } from '../support/cli.js';
import type { Simulator } from '../support/simulator.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfA2dC6WcGxPx0sN1yKq0mYkq0X8oZ5yN8dGd1cV2wL agent@example';
const RESTRICTED = `security:
  mode: restricted
  namePrefix: agent-
  allowedTemplates: [ubuntu-22.04-template]
  limits: {cpu: 4, memoryGB: 8, diskGB: 50, vms: 3}
  requireTTL: true
  maxTTL: 1d
`;

describe('restricted mode and expiry', () => {
  let sim: Simulator;
  let bed: SimulatorWorkspace | undefined;
  let env: Record<string, string>;
  const ceso = (...args: string[]) => runCli(args, { env });
  const denied = async (args: string[], rule: string): Promise<void> => {
    const result = await ceso(...args, '--json');
    expect(result.code, `${args.join(' ')}\n${result.stdout}`).toBe(7);
    const { error } = result.json<{ error: { code: string; message: string; details: { rule: string } } }>();
    expect(error.code).toBe('POLICY_DENIED');
    expect(error.details.rule).toBe(rule);
    expect(error.message).toContain(`rule ${rule}`);
  };

  beforeAll(async () => {
    bed = await openSimulatorWorkspace({ mode: 'esx', vms: 2 }, RESTRICTED);
    ({ sim, env } = bed);
  });
  afterAll(async () => {
    await bed?.close();
  });

  it('says "mode": "restricted" in every result and still lists and shows every VM', async () => {
    const list = await ceso('vm', 'list', '--json');
    expect(list.code).toBe(0);
    const vms = list.json<Array<{ mode: string; managed: boolean; name: string }>>();
    expect(vms.length).toBeGreaterThan(2);
    expect(vms.every((vm) => vm.mode === 'restricted')).toBe(true);
    const foreign = vms.find((vm) => !vm.managed);
    const info = await ceso('vm', 'info', foreign?.name ?? '', '--json');
    expect(info.json()).toMatchObject({ mode: 'restricted', managed: false });
  });

  it('cannot be turned off from the environment, and CESO_MODE turns it on', async () => {
    const stillRestricted = await runCli(['vm', 'list', '--json'], { env: { ...env, CESO_MODE: 'standard' } });
    expect(stillRestricted.json<Array<{ mode: string }>>()[0]?.mode).toBe('restricted');
    const plain = workspace();
    try {
      plain.writeConfig(simulatorConfig(sim));
      const fromEnv = await runCli(['vm', 'list', '--json'], { env: { ...plain.env, SIM_PASSWORD: sim.password, CESO_MODE: 'restricted' } });
      expect(fromEnv.json<Array<{ mode: string }>>()[0]?.mode).toBe('restricted');
      const standard = await runCli(['vm', 'list', '--json'], { env: { ...plain.env, SIM_PASSWORD: sim.password } });
      expect(standard.json<Array<{ mode: string }>>()[0]?.mode).toBe('standard');
    } finally {
      plain.cleanup();
    }
  });

  it('denies each rule with exit 7, naming the rule and the value, and changes nothing', async () => {
    const before = await sim.listFiles();
    await denied(['vm', 'create', 'web1', '--ttl', '2h'], 'namePrefix');
    await denied(['vm', 'create', 'agent-1', '--ttl', '2h', '--template', 'vm-0001'], 'allowedTemplates');
    await denied(['vm', 'create', 'agent-1', '--ttl', '2h', '--cpu', '8'], 'limits.cpu');
    await denied(['vm', 'create', 'agent-1', '--ttl', '2h', '--memory', '16'], 'limits.memoryGB');
    await denied(['vm', 'create', 'agent-1', '--ttl', '2h', '--disk', '100'], 'limits.diskGB');
    await denied(['vm', 'create', 'agent-1'], 'requireTTL');
    await denied(['vm', 'create', 'agent-1', '--ttl', '2d'], 'maxTTL');
    const dir = mkdtempSync(join(tmpdir(), 'ceso-ud-'));
    writeFileSync(join(dir, 'ud.yaml'), '#cloud-config\nruncmd: [[id]]\n');
    await denied(['vm', 'create', 'agent-1', '--ttl', '2h', '--user-data', join(dir, 'ud.yaml')], 'allowUserData');
    const foreign = (await sim.oracle<Array<{ name: string; managed: boolean }>>('list')).find((vm) => !vm.managed)?.name ?? '';
    await denied(['vm', 'power', foreign, 'off'], 'managedOnly');
    await denied(['vm', 'delete', foreign, '--yes'], 'managedOnly');
    await denied(['vm', 'clone', foreign, 'agent-c', '--ttl', '1h'], 'managedOnly');
    // an import makes an unmanaged VM: an operator's job, refused before the package is even read
    await denied(['template', 'import', join(dir, 'ud.yaml'), '--name', 'agent-tpl'], 'templateImport');
    expect(await sim.listFiles()).toEqual(before);
  });

  it('lets an agent create, power and delete its own VMs, with --yes and without --force', async () => {
    const created = await ceso('vm', 'create', 'agent-1', '--ttl', '2h', '--ssh-key', KEY, '--cpu', '2', '--memory', '2', '--disk', '20', '--json');
    expect(created.code, created.stdout).toBe(0);
    expect(created.json()).toMatchObject({ name: 'agent-1', managed: true, mode: 'restricted' });
    expect((await ceso('vm', 'power', 'agent-1', 'off', '--json')).json()).toMatchObject({ powerState: 'poweredOff', mode: 'restricted' });
    await denied(['vm', 'delete', 'agent-1'], 'confirmation');
    await denied(['vm', 'delete', 'agent-1', '--yes', '--force'], 'force');
    const deleted = await ceso('vm', 'delete', 'agent-1', '--yes', '--json');
    expect(deleted.code, deleted.stdout).toBe(0);
    expect(deleted.json()).toMatchObject({ deleted: true, mode: 'restricted' });
  });

  it('enforces the most managed VMs on a host', async () => {
    for (const name of ['agent-a', 'agent-b', 'agent-c']) {
      const result = await ceso('vm', 'create', name, '--ttl', '1h', '--no-power-on', '--json');
      expect(result.code, result.stdout).toBe(0);
    }
    await denied(['vm', 'create', 'agent-d', '--ttl', '1h'], 'limits.vms');
  });

  it('reaps only the managed VMs whose expiry has passed, reporting each', async () => {
    await sim.oracle('set-extra', 'agent-a', 'ceso.expiresAt=2020-01-01T00:00:00.000Z');
    await sim.oracle('set-extra', 'agent-b', 'ceso.expiresAt=2021-06-01T00:00:00.000Z');
    const foreign = (await sim.oracle<Array<{ name: string; managed: boolean }>>('list')).find((vm) => !vm.managed)?.name ?? '';
    await sim.oracle('set-extra', foreign, 'ceso.expiresAt=2020-01-01T00:00:00.000Z');

    const listed = await ceso('vm', 'list', '--json');
    const expiry = Object.fromEntries(listed.json<Array<{ name: string; expiresAt: string | null }>>().map((vm) => [vm.name, vm.expiresAt]));
    expect(expiry['agent-a']).toBe('2020-01-01T00:00:00.000Z');
    expect(typeof expiry['agent-c']).toBe('string');

    const before = await sim.listFiles();
    const plan = await ceso('vm', 'reap', '--dry-run', '--json');
    expect(plan.code).toBe(0);
    const planned = plan.json<{ dryRun: boolean; reaped: Array<{ name: string; deleted: boolean }>; plans: unknown[] }>();
    expect(planned.dryRun).toBe(true);
    expect(planned.reaped.map((entry) => entry.name).sort()).toEqual(['agent-a', 'agent-b']);
    expect(planned.reaped.every((entry) => !entry.deleted)).toBe(true);
    expect(planned.plans).toHaveLength(2);
    expect(await sim.listFiles()).toEqual(before);

    const reaped = await ceso('vm', 'reap', '--json');
    expect(reaped.code, reaped.stdout).toBe(0);
    const result = reaped.json<{ reaped: Array<{ name: string; deleted: boolean; error: unknown }>; mode: string }>();
    expect(result.mode).toBe('restricted');
    expect(result.reaped.map((entry) => [entry.name, entry.deleted, entry.error]).sort()).toEqual([
      ['agent-a', true, null],
      ['agent-b', true, null],
    ]);
    const names = (await sim.oracle<Array<{ name: string }>>('list')).map((vm) => vm.name);
    expect(names).toContain('agent-c');
    expect(names).toContain(foreign);
    expect(names).not.toContain('agent-a');
    expect((await ceso('vm', 'reap')).stdout).toContain('No expired managed VMs');
  });
});
