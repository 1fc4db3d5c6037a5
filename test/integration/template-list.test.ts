// `ceso template list` as a process, on the API path (the simulator over HTTPS) and over SSH (the
// test bed's sshd and ESXi shell emulator, same inventory): the test bed's template (the config's
// defaults.template) is fit; VMs marked ceso.template = "true" are listed with ceso.importedFrom,
// a VM marked as a template (config.template, MarkAsTemplate) is listed,
// a powered-on one and one without disk or NIC unfit with the reasons; a VM ceso created
// (ceso.template = <template name>) is not listed; both paths print the same JSON apart from
// `via`, valid against the generated schema/template-list.json; an empty result says what to do.
// Needs the built CLI and schema/ (npm run build).
import { Ajv2020 } from 'ajv/dist/2020.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, requireBuiltCli, runCli, sshConfig, withoutPath, workspace, type CesoWorkspace, type CliResult } from '../support/cli.js';
import { startSimulator, type Simulator } from '../support/simulator.js';
import { startSshServer, type SshServer } from '../support/sshd.js';
import { MoRef } from '../../src/esxi/soap/xml.js';
import { VimClient } from '../../src/esxi/vim/client.js';

const q = (value: string): string => `'${value.replace(/'/g, `'\\''`)}'`;
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc3Zt0h6m9O6m8yq0Jc2kq9Wm6V8rB3p2wq1cQm2XyZ template-list';
const TEMPLATE = 'ubuntu-22.04-template';
const SOURCE = 'jammy-server-cloudimg-amd64.ova';

type Json = Record<string, unknown>;

describe('ceso template list', { timeout: 180_000 }, () => {
  let sim: Simulator;
  let sshd: SshServer;
  let ws: CesoWorkspace;
  let env: Record<string, string>;
  let bareId: string;

  const ceso = (args: string[], runEnv: Record<string, string> = env): Promise<CliResult> => runCli(args, { env: runEnv, timeoutMs: 90_000 });
  const ok = (result: CliResult): CliResult => {
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    return result;
  };
  const list = async (via: 'api' | 'ssh', runEnv: Record<string, string> = env): Promise<Json[]> =>
    ok(await ceso(['template', 'list', '--json', '--via', via], runEnv)).json<Json[]>();

  beforeAll(async () => {
    requireBuiltCli();
    // vm-0001 and vm-0003 are powered on, vm-0002 and vm-0004 powered off; the template is
    // powered off with a 10 GB thin disk and a NIC.
    sim = await startSimulator({ mode: 'esx', vms: 4 });
    sshd = await startSshServer({ sim });
    ws = workspace();
    ws.writeConfig(sshConfig(sim, sshd));
    env = { ...ws.env, SIM_PASSWORD: sim.password };
  }, 120_000);

  afterAll(async () => {
    await sshd?.stop();
    await sim?.stop();
    ws?.cleanup();
  });

  it('with no candidate, prints [] with --json and says what to do (both paths)', async () => {
    const other = workspace();
    try {
      other.writeConfig(sshConfig(sim, sshd).replace(`template: ${TEMPLATE}`, 'template: no-such-template'));
      const otherEnv = { ...other.env, SIM_PASSWORD: sim.password };
      expect(await list('api', otherEnv)).toEqual([]);
      expect(await list('ssh', otherEnv)).toEqual([]);
      const human = ok(await ceso(['template', 'list', '--via', 'api'], otherEnv));
      expect(human.stdout).toContain('No templates: import one with ceso template import');
      expect(human.stdout).toContain('set defaults.template');
      expect(human.stdout).toContain('defaults.template "no-such-template" names no VM on this host');
    } finally {
      other.cleanup();
    }
  });

  it('lists the default template (fit), ceso templates with importedFrom, unfit ones with reasons; not VMs ceso made', async () => {
    // Marked as ceso's imports are, the way an operator would (govc vm.change -e).
    await sim.oracle('set-extra', 'vm-0002', 'ceso.template=true', `ceso.importedFrom=${SOURCE}`);
    await sim.oracle('set-extra', 'vm-0001', 'ceso.template=true');
    // A VM ceso made carries ceso.template = <the template's name>: it is not a template.
    ok(await ceso(['vm', 'create', 'made-by-ceso', '--no-power-on', '--ssh-key', KEY, '--json', '--via', 'api']));
    // A VM with neither disk nor NIC, registered by hand and then marked.
    const dir = `${sim.volumesRoot}/datastore1/bare`;
    const vmx = ['.encoding = "UTF-8"', 'config.version = "8"', 'virtualHW.version = "19"', 'displayName = "bare"', 'guestOS = "ubuntu-64"', 'numvcpus = "1"', 'memSize = "512"', ''].join('\n');
    const write = await sshd.exec(`mkdir ${q(dir)} && cat > ${q(`${dir}/bare.vmx`)}`, { input: vmx });
    expect(write.code, write.stderr).toBe(0);
    const register = await sshd.exec(`vim-cmd solo/registervm ${q(`${dir}/bare.vmx`)}`);
    expect(register.code, register.stdout).toBe(0);
    bareId = register.stdout.trim();
    await sim.oracle('set-extra', 'bare', 'ceso.template=true');

    const vms = ok(await ceso(['vm', 'list', '--json', '--via', 'api'])).json<Json[]>();
    const idOf = (name: string): string => String(vms.find((vm) => vm.name === name)?.id);
    // Marked as a template (config.template = true), as vCenter does: no ceso marker at all.
    const client = VimClient.create({ host: sim.host, port: sim.port, user: sim.user, password: sim.password, insecure: false, thumbprint: sim.thumbprintSha256, timeoutMs: 30_000, connectTimeoutMs: 10_000 });
    try {
      await client.invoke('MarkAsTemplate', new MoRef('VirtualMachine', idOf('vm-0004')));
    } finally {
      client.close();
    }
    expect(vms.map((vm) => vm.name)).toContain('made-by-ceso');

    const templates = await list('api');
    expect(templates.map((template) => template.name)).toEqual(['bare', TEMPLATE, 'vm-0001', 'vm-0002', 'vm-0004']);
    for (const template of templates) {
      expect(Object.keys(template).sort()).toEqual(['disks', 'fit', 'guestId', 'id', 'importedFrom', 'mode', 'name', 'unfitReasons', 'via']);
      expect(template).toMatchObject({ via: 'api', mode: 'standard' });
    }
    const byName = Object.fromEntries(templates.map((template) => [template.name, template]));
    expect(byName[TEMPLATE]).toEqual({
      name: TEMPLATE,
      id: idOf(TEMPLATE),
      guestId: 'ubuntu64Guest',
      disks: [{ label: expect.any(String), file: `[datastore1] ${TEMPLATE}/${TEMPLATE}.vmdk`, capacityGB: 10, thin: true, parent: null }],
      importedFrom: null,
      fit: true,
      unfitReasons: [],
      via: 'api',
      mode: 'standard',
    });
    expect(byName['vm-0002']).toMatchObject({ id: idOf('vm-0002'), importedFrom: SOURCE, fit: true, unfitReasons: [] });
    expect(byName['vm-0002']?.disks).toEqual([{ label: expect.any(String), file: '[datastore1] vm-0002/vm-0002.vmdk', capacityGB: 16, thin: true, parent: null }]);
    // The disks are what vm info shows of the same VM.
    for (const name of [TEMPLATE, 'vm-0002']) {
      const info = ok(await ceso(['vm', 'info', name, '--json', '--via', 'api'])).json<Json>();
      expect(byName[name]?.disks).toEqual(info.disks);
    }
    expect(byName['vm-0001']).toMatchObject({ id: idOf('vm-0001'), importedFrom: null, fit: false, unfitReasons: ['powered on: a template must be powered off'] });
    expect(byName['vm-0004']).toMatchObject({ id: idOf('vm-0004'), importedFrom: null, fit: true, unfitReasons: [] });
    expect(byName['bare']).toMatchObject({ id: bareId, disks: [], fit: false, unfitReasons: ['no disk', 'no network adapter (NIC)'] });

    const schema = JSON.parse(readFileSync(join(ROOT, 'schema/template-list.json'), 'utf8')) as Json;
    const validate = new Ajv2020({ allErrors: true, strict: true }).compile(schema);
    expect(validate(templates), JSON.stringify(validate.errors, null, 2)).toBe(true);
  });

  it('over SSH: the same JSON apart from via, valid against the schema, in one SSH command', async () => {
    const overApi = await list('api');
    const result = ok(await ceso(['template', 'list', '--json', '--via', 'ssh', '--log-level', 'debug']));
    const overSsh = result.json<Json[]>();
    expect(overSsh.every((template) => template.via === 'ssh')).toBe(true);
    expect(overSsh.map(withoutPath)).toEqual(overApi.map(withoutPath));
    expect(result.stderr.match(/"msg":"ssh connected"/g)).toHaveLength(1);
    expect(result.stderr.match(/"msg":"ssh exec"/g)).toHaveLength(1);
    const schema = JSON.parse(readFileSync(join(ROOT, 'schema/template-list.json'), 'utf8')) as Json;
    const validate = new Ajv2020({ allErrors: true, strict: true }).compile(schema);
    expect(validate(overSsh), JSON.stringify(validate.errors, null, 2)).toBe(true);
  });

  it('prints a table for people: guest, disks with sizes, imported from, fit or why not', async () => {
    for (const via of ['api', 'ssh']) {
      const lines = ok(await ceso(['template', 'list', '--via', via])).stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^NAME +ID +GUEST +DISKS +IMPORTED FROM +FIT$/);
      expect(lines).toHaveLength(6);
      expect(lines.find((line) => line.startsWith(`${TEMPLATE} `))).toMatch(/ubuntu64Guest +10 GB thin +- +yes$/);
      expect(lines.find((line) => line.startsWith('vm-0002 '))).toMatch(new RegExp(`16 GB thin +${SOURCE.replaceAll('.', '\\.')} +yes$`));
      expect(lines.find((line) => line.startsWith('vm-0001 '))).toMatch(/ no: powered on: a template must be powered off$/);
      expect(lines.find((line) => line.startsWith('bare '))).toMatch(/ no: no disk; no network adapter \(NIC\)$/);
    }
  });
});
