// --wait ip|ready and `vm ip`, end to end: the built CLI as a process against the simulator over
// HTTPS (the test bed's guest reports its IP from the guestinfo metadata after the delay set with
// `delay {"method":"guest.ipAddress"}`, and sets guestinfo.ceso.ready to its instance-id after
// `delay {"method":"guest.ready"}` when its user data carries ceso's runcmd entry), and over SSH
// through the real sshd test bed. The waiter's requests are counted from the CLI's own debug log
// (one "soap call" line per request) to show it waits for changes instead of polling.
// Needs the built CLI and schema/ (npm run build).
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, requireBuiltCli, runCli, sshConfig, workspace, type CesoWorkspace, type CliResult } from '../support/cli.js';
import { startSimulator, type Simulator } from '../support/simulator.js';
import { startSshServer, type SshServer } from '../support/sshd.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfA2dC6WcGxPx0sN1yKq0mYkq0X8oZ5yN8dGd1cV2wL wait@example';

type Json = Record<string, unknown>;
interface ErrorJson {
  error: { code: string; message: string; hint?: string; details?: Json };
}

/** The SOAP methods the CLI called, in order, from its --log-level debug output on stderr. */
function soapCalls(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((line) => line.includes('"soap call"'))
    .map((line) => (JSON.parse(line) as { method: string }).method);
}

const count = (calls: string[], method: string): number => calls.filter((call) => call === method).length;

describe('waiting until a VM is usable (--wait ip|ready, vm ip)', { timeout: 240_000 }, () => {
  let sim: Simulator;
  let sshd: SshServer;
  let ws: CesoWorkspace;
  let env: Record<string, string>;
  const validators = new Map<string, ValidateFunction>();

  const ceso = (args: string[], timeoutMs = 120_000): Promise<CliResult> => runCli(args, { env, timeoutMs });
  const ok = (result: CliResult): CliResult => {
    expect(result.code, `${result.stdout}\n${result.stderr.slice(-3000)}`).toBe(0);
    return result;
  };
  /** The --json output, checked against the command's generated schema (or the error schema). */
  const valid = <T = Json>(command: string, result: CliResult): T => {
    const output = result.json<Json>();
    const validate = validators.get('error' in output ? 'error' : command.replace(' ', '-'));
    expect(validate, command).toBeDefined();
    expect(validate!(output), `${command}: ${JSON.stringify(validate!.errors, null, 2)}\n${result.stdout}`).toBe(true);
    return output as T;
  };
  const delay = (method: 'guest.ipAddress' | 'guest.ready', ms: number): Promise<void> => sim.control('delay', { method, ms });

  beforeAll(async () => {
    requireBuiltCli();
    const ajv = new Ajv2020({ allErrors: true, strict: true });
    for (const id of ['vm-create', 'vm-clone', 'vm-power', 'vm-ip', 'error']) {
      validators.set(id, ajv.compile(JSON.parse(readFileSync(join(ROOT, 'schema', `${id}.json`), 'utf8')) as Json));
    }
    sim = await startSimulator({ mode: 'esx', vms: 2 });
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

  it('create --wait ip: the --ip address, after the guest reports it, with one WaitForUpdatesEx per change', async () => {
    await delay('guest.ipAddress', 4000);
    const result = ok(await ceso(['vm', 'create', 'w-ip', '--ip', '192.168.50.10/24', '--gateway', '192.168.50.1', '--ssh-key', KEY, '--wait', 'ip', '--json', '--log-level', 'debug']));
    const vm = valid<Json>('vm create', result);
    expect(vm).toMatchObject({ name: 'w-ip', ip: '192.168.50.10', status: 'running', via: 'api' });
    expect(vm.waitedMs as number).toBeGreaterThanOrEqual(3000);
    expect(typeof vm.ready).toBe('boolean');

    // Waiting ~4 s made a handful of requests, not a polling loop: one collector, one filter, the
    // first full read and the change that brought the address (vcsim batches changes every 250 ms).
    const calls = soapCalls(result.stderr);
    const wait = calls.slice(calls.indexOf('CreatePropertyCollector'));
    expect(count(calls, 'CreatePropertyCollector')).toBe(1);
    expect(count(calls, 'DestroyPropertyCollector')).toBe(1);
    expect(wait[0]).toBe('CreatePropertyCollector');
    expect(wait[1]).toBe('CreateFilter');
    expect(wait.at(-1)).toBe('DestroyPropertyCollector');
    expect(count(wait, 'WaitForUpdatesEx')).toBeGreaterThanOrEqual(2);
    expect(count(wait, 'WaitForUpdatesEx')).toBeLessThanOrEqual(6);
    expect(wait.length).toBeLessThanOrEqual(9);
  });

  it('vm ip: at once without --wait; the JSON shape; an already usable VM answers --wait at once', async () => {
    const now = valid<Json>('vm ip', ok(await ceso(['vm', 'ip', 'w-ip', '--json'])));
    expect(Object.keys(now).sort()).toEqual(['id', 'ip', 'mode', 'name', 'powerState', 'ready', 'toolsStatus', 'via', 'waitedMs']);
    expect(now).toMatchObject({ name: 'w-ip', ip: '192.168.50.10', waitedMs: null, powerState: 'poweredOn', toolsStatus: 'guestToolsRunning', via: 'api', mode: 'standard' });
    const waited = valid<Json>('vm ip', ok(await ceso(['vm', 'ip', 'w-ip', '--wait', 'ip', '--json'])));
    expect(waited.ip).toBe('192.168.50.10');
    expect(waited.waitedMs as number).toBeLessThan(5000);
    const human = ok(await ceso(['vm', 'ip', 'w-ip']));
    expect(human.stdout).toBe('192.168.50.10\n');
  });

  it('create --wait ready: the guest reports ceso’s marker with this VM’s instance-id', async () => {
    await delay('guest.ipAddress', 1000);
    await delay('guest.ready', 1500);
    const result = ok(await ceso(['vm', 'create', 'w-ready', '--ip', '192.168.50.11/24', '--ssh-key', KEY, '--wait', 'ready', '--json', '--log-level', 'debug']));
    const vm = valid<Json>('vm create', result);
    expect(vm).toMatchObject({ name: 'w-ready', ip: '192.168.50.11', ready: true });
    expect(vm.waitedMs as number).toBeGreaterThanOrEqual(2000);
    const calls = soapCalls(result.stderr);
    expect(count(calls, 'WaitForUpdatesEx')).toBeLessThanOrEqual(8);
    const oracle = await sim.oracle<{ uuid: string; extraConfig: Record<string, string> }>('vm', 'w-ready');
    expect(oracle.extraConfig['guestinfo.ceso.ready']).toBe(oracle.uuid);
    expect(valid<Json>('vm ip', ok(await ceso(['vm', 'ip', 'w-ready', '--json'])))).toMatchObject({ ready: true, ip: '192.168.50.11' });
  });

  it('a stopped VM: vm ip answers at once with no address; --wait fails fast with INVALID_POWER_STATE; power on --wait ip', async () => {
    valid('vm create', ok(await ceso(['vm', 'create', 'w-off', '--ip', '192.168.50.12/24', '--ssh-key', KEY, '--no-power-on', '--json'])));
    const now = valid<Json>('vm ip', ok(await ceso(['vm', 'ip', 'w-off', '--json'])));
    expect(now).toMatchObject({ ip: null, ready: false, waitedMs: null, powerState: 'poweredOff' });
    const human = ok(await ceso(['vm', 'ip', 'w-off']));
    expect(human.stdout).toBe('');
    expect(human.stderr).toContain('w-off reports no IP address yet: powered off');

    const started = Date.now();
    const off = await ceso(['vm', 'ip', 'w-off', '--wait', 'ip', '--json']);
    expect(off.code).toBe(4);
    expect(valid<ErrorJson>('vm ip', off).error).toMatchObject({ code: 'INVALID_POWER_STATE', hint: expect.stringContaining('vm power w-off on --wait ip') });
    expect(Date.now() - started).toBeLessThan(20_000);

    await delay('guest.ipAddress', 2000);
    const on = valid<Json>('vm power', ok(await ceso(['vm', 'power', 'w-off', 'on', '--wait', 'ip', '--json'])));
    expect(on).toMatchObject({ action: 'on', powerState: 'poweredOn', changed: true, ip: '192.168.50.12' });
    expect(on.waitedMs as number).toBeGreaterThanOrEqual(1000);
    expect(on.ready === null || typeof on.ready === 'boolean').toBe(true);
    // Without --wait the wait fields are there, null.
    expect(valid<Json>('vm power', ok(await ceso(['vm', 'power', 'w-off', 'off', '--json'])))).toMatchObject({ ip: null, ready: null, waitedMs: null });
  });

  it('refuses waits that cannot end: --no-power-on, power off, ready on a VM without ceso metadata', async () => {
    const noPower = await ceso(['vm', 'create', 'w-never', '--no-power-on', '--wait', 'ip', '--json']);
    expect(noPower.code).toBe(2);
    expect(valid<ErrorJson>('vm create', noPower).error.message).toContain('--no-power-on');
    const powerOff = await ceso(['vm', 'power', 'w-ip', 'off', '--wait', 'ip', '--json']);
    expect(powerOff.code).toBe(2);
    const foreign = await ceso(['vm', 'ip', 'vm-0001', '--wait', 'ready', '--json']);
    expect(foreign.code).toBe(2);
    expect(valid<ErrorJson>('vm ip', foreign).error.message).toContain('no ceso cloud-init metadata');
    // power on --wait ready of such a VM is refused before it is powered on
    ok(await ceso(['vm', 'power', 'vm-0002', 'off']));
    const before = await ceso(['vm', 'power', 'vm-0002', 'on', '--wait', 'ready', '--json']);
    expect(before.code).toBe(2);
    expect(valid<Json>('vm ip', ok(await ceso(['vm', 'ip', 'vm-0002', '--json']))).powerState).toBe('poweredOff');
    // the same VM can be waited for its address: DHCP, any IPv4
    expect(valid<Json>('vm power', ok(await ceso(['vm', 'power', 'vm-0002', 'on', '--wait', 'ip', '--json']))).ip).toMatch(/^198\.51\.100\./);
  });

  it('a wait that runs out: exit 8 TIMEOUT naming what was last seen; the VM is kept; few requests in several seconds', async () => {
    await delay('guest.ipAddress', 120_000);
    const started = Date.now();
    const result = await ceso(['vm', 'create', 'w-slow', '--ip', '192.168.50.13/24', '--ssh-key', KEY, '--wait', 'ip', '--wait-timeout', '6', '--json', '--log-level', 'debug']);
    expect(result.code, result.stdout).toBe(8);
    const { error } = valid<ErrorJson>('vm create', result);
    expect(error.code).toBe('TIMEOUT');
    expect(error.message).toContain('w-slow: its guest did not report its address 192.168.50.13 on its NIC within 6 s (the VM is kept); last seen: powered on');
    expect(error.message).toContain('no IP address');
    expect(error.hint).toContain('nothing was undone');
    expect(error.details).toMatchObject({ vm: 'w-slow', kept: true, until: 'ip', expectedIp: '192.168.50.13', last: { powerState: 'poweredOn', ip: null } });
    expect(Date.now() - started).toBeLessThan(60_000);
    const calls = soapCalls(result.stderr);
    const wait = calls.slice(calls.indexOf('CreatePropertyCollector'));
    // 6 s of waiting: the first full read, then calls that each wait for a change (maxWaitSeconds), a
    // re-read after each empty answer; the collector destroyed at the end.
    expect(count(wait, 'WaitForUpdatesEx')).toBeLessThanOrEqual(4);
    expect(wait.length).toBeLessThanOrEqual(10);
    expect(wait.at(-1)).toBe('DestroyPropertyCollector');
    // The VM stays (waiting is not part of create's undo).
    expect(valid<Json>('vm ip', ok(await ceso(['vm', 'ip', 'w-slow', '--json'])))).toMatchObject({ name: 'w-slow', ip: null, powerState: 'poweredOn' });
  });

  it('Ctrl-C stops the wait: INTERRUPTED, CancelWaitForUpdates sent, the collector destroyed, the VM kept', async () => {
    let child: ChildProcess | undefined;
    let waiting = false;
    const pending = runCli(['vm', 'ip', 'w-slow', '--wait', 'ip', '--json', '--log-level', 'debug'], {
      env,
      timeoutMs: 60_000,
      onSpawn: (spawned) => {
        child = spawned;
        // the first WaitForUpdatesEx answers at once with the current state: after it, the waiter waits
        spawned.stderr?.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('"method":"WaitForUpdatesEx"')) waiting = true;
        });
      },
    });
    for (let waited = 0; !waiting && waited < 30_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    await new Promise((resolve) => setTimeout(resolve, 300));
    child?.kill('SIGINT');
    const result = await pending;
    expect(result.code, result.stdout + result.stderr.slice(-2000)).toBe(8);
    expect(valid<ErrorJson>('vm ip', result).error.code).toBe('INTERRUPTED');
    const calls = soapCalls(result.stderr);
    expect(calls).toContain('CancelWaitForUpdates');
    expect(calls.at(-1)).toBe('DestroyPropertyCollector');
    ok(await ceso(['vm', 'info', 'w-slow']));
    await delay('guest.ipAddress', 0);
  });

  it('clone --wait ip with a new --ip', async () => {
    await delay('guest.ipAddress', 500);
    ok(await ceso(['vm', 'power', 'w-off', 'off']));
    const clone = valid<Json>('vm clone', ok(await ceso(['vm', 'clone', 'w-off', 'w-copy', '--ip', '192.168.50.14/24', '--wait', 'ip', '--json'])));
    expect(clone).toMatchObject({ name: 'w-copy', ip: '192.168.50.14', status: 'running' });
    expect(typeof clone.waitedMs).toBe('number');
  });

  describe('over SSH (--via ssh)', () => {
    it('vm ip, --wait ip and --wait ready by polling vim-cmd', async () => {
      const now = valid<Json>('vm ip', ok(await ceso(['vm', 'ip', 'w-ready', '--via', 'ssh', '--json'])));
      expect(now).toMatchObject({ name: 'w-ready', ip: '192.168.50.11', ready: true, waitedMs: null, powerState: 'poweredOn', toolsStatus: 'guestToolsRunning', via: 'ssh' });

      await delay('guest.ipAddress', 2000);
      await delay('guest.ready', 1000);
      const made = valid<Json>('vm create', ok(await ceso(['vm', 'create', 's-ready', '--ip', '192.168.50.20/24', '--ssh-key', KEY, '--via', 'ssh', '--wait', 'ready', '--json'])));
      expect(made).toMatchObject({ name: 's-ready', via: 'ssh', ip: '192.168.50.20', ready: true });
      expect(made.waitedMs as number).toBeGreaterThanOrEqual(2000);

      ok(await ceso(['vm', 'power', 's-ready', 'off', '--via', 'ssh']));
      const off = await ceso(['vm', 'ip', 's-ready', '--via', 'ssh', '--wait', 'ip', '--json']);
      expect(valid<ErrorJson>('vm ip', off).error.code).toBe('INVALID_POWER_STATE');
      const on = valid<Json>('vm power', ok(await ceso(['vm', 'power', 's-ready', 'on', '--via', 'ssh', '--wait', 'ip', '--json'])));
      expect(on).toMatchObject({ via: 'ssh', ip: '192.168.50.20' });
    });

    it('a timeout over SSH names the last state and how to check', async () => {
      await delay('guest.ipAddress', 120_000);
      ok(await ceso(['vm', 'power', 's-ready', 'off', '--via', 'ssh']));
      ok(await ceso(['vm', 'power', 's-ready', 'on', '--via', 'ssh']));
      const result = await ceso(['vm', 'ip', 's-ready', '--via', 'ssh', '--wait', 'ready', '--wait-timeout', '4', '--json']);
      expect(result.code).toBe(8);
      const { error } = valid<ErrorJson>('vm ip', result);
      expect(error).toMatchObject({ code: 'TIMEOUT', details: { kept: true, until: 'ready' } });
      expect(error.message).toContain('last seen: powered on');
      expect(error.hint).toContain('cloud-init status --long');
      await delay('guest.ipAddress', 0);
    });
  });
});
