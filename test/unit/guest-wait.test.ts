// Waiting for a guest (--wait ip|ready): the decisions both paths share (core/readiness.ts), the
// property-collector waiter (esxi/vim/wait.ts) against a scripted host, the XML reader on
// vcsim's empty WaitForUpdatesEx answer, and the SSH poller (ssh/ops/guest-wait.ts) against a
// scripted shell. The end-to-end runs are in test/integration/wait.test.ts.
import { describe, expect, it } from 'vitest';
import { encodeGzipBase64 } from '../../src/cloudinit/encoding.js';
import { READY_KEY } from '../../src/cloudinit/ready.js';
import { CesoError } from '../../src/core/errors.js';
import {
  checkWaitable,
  guestTarget,
  isSatisfied,
  metadataFacts,
  normalizeAddress,
  observedIp,
  observedReady,
  outcomeOf,
  timeoutError,
  waitRequestFrom,
  type GuestObservation,
} from '../../src/core/readiness.js';
import { firstNicMac, maxWaitFor, observe } from '../../src/esxi/ops/guest-wait.js';
import { decodeBody, MoRef, type Decoded, type XmlObject } from '../../src/esxi/soap/xml.js';
import type { VimClient } from '../../src/esxi/vim/client.js';
import { applyChanges, waitForProperties } from '../../src/esxi/vim/wait.js';
import type { ExecResult, RemoteShell } from '../../src/ssh/connection.js';
import { parseConfig, waitForGuest as sshWaitForGuest } from '../../src/ssh/ops/guest-wait.js';
import { errorOf, rejectionOf } from '../support/errors.js';

const MAC = '00:50:56:00:12:34';
const INSTANCE = '4213c9a2-0f4e-4bd6-9a5f-0c1c2d3e4f50';

function metadataConfig(network: Record<string, unknown> | undefined, instanceId = INSTANCE): Map<string, string> {
  const lines = [`instance-id: ${instanceId}`, 'local-hostname: web1'];
  if (network !== undefined) lines.push(`network: ${JSON.stringify(network)}`);
  return new Map([
    ['guestinfo.metadata', encodeGzipBase64(`${lines.join('\n')}\n`)],
    ['guestinfo.metadata.encoding', 'gzip+base64'],
  ]);
}

const STATIC = { version: 2, ethernets: { nic0: { match: { macaddress: MAC }, 'set-name': 'nic0', dhcp4: false, addresses: ['192.168.1.100/24'] } } };
const DHCP = { version: 2, ethernets: { nic0: { match: { macaddress: MAC }, 'set-name': 'nic0', dhcp4: true } } };

function seen(overrides: Partial<GuestObservation> = {}): GuestObservation {
  return { powerState: 'poweredOn', toolsStatus: 'guestToolsRunning', guestIp: null, net: [], extraConfig: new Map(), ...overrides };
}

describe('readiness: what counts as an address and as ready', () => {
  it('reads the instance-id and the NIC’s static address from the metadata (by MAC), nothing from DHCP or no metadata', () => {
    expect(metadataFacts(metadataConfig(STATIC), MAC)).toEqual({ instanceId: INSTANCE, staticIp: '192.168.1.100' });
    expect(metadataFacts(metadataConfig(DHCP), MAC)).toEqual({ instanceId: INSTANCE, staticIp: null });
    expect(metadataFacts(metadataConfig(STATIC), '00:50:56:00:99:99')).toEqual({ instanceId: INSTANCE, staticIp: null });
    expect(metadataFacts(new Map(), MAC)).toEqual({ instanceId: null, staticIp: null });
    expect(metadataFacts(new Map([['guestinfo.metadata', '%%% not yaml: [']]), MAC)).toEqual({ instanceId: null, staticIp: null });
    const v6 = { version: 2, ethernets: { nic0: { match: { macaddress: MAC }, addresses: ['2001:DB8:0:0::5/64'] } } };
    expect(metadataFacts(metadataConfig(v6), MAC).staticIp).toBe('2001:db8::5');
  });

  it('the caller’s expected address wins over the metadata’s', () => {
    const target = guestTarget({ name: 'web1', id: 'vm-1' }, MAC.toUpperCase(), metadataConfig(STATIC), '10.0.0.7/24');
    expect(target).toEqual({ name: 'web1', id: 'vm-1', mac: MAC, expectedIp: '10.0.0.7', instanceId: INSTANCE });
    expect(normalizeAddress(' 10.0.0.7 ')).toBe('10.0.0.7');
  });

  it('ip: the address on the first NIC, matched by MAC; only the static one when there is one; never link-local', () => {
    const anyIp = guestTarget({ name: 'web1', id: 'vm-1' }, MAC, metadataConfig(DHCP), undefined);
    const fixed = guestTarget({ name: 'web1', id: 'vm-1' }, MAC, metadataConfig(STATIC), undefined);
    const other = { mac: '00:50:56:00:99:99', ips: ['172.17.0.1'] };
    expect(observedIp(anyIp, seen({ net: [other, { mac: MAC, ips: ['fe80::1', '169.254.3.4', '198.51.100.20'] }] }))).toBe('198.51.100.20');
    expect(observedIp(anyIp, seen({ net: [other], guestIp: '172.17.0.1' }))).toBeNull();
    expect(observedIp(anyIp, seen({ net: [], guestIp: '198.51.100.20' }))).toBe('198.51.100.20');
    expect(observedIp(fixed, seen({ net: [{ mac: MAC, ips: ['198.51.100.20'] }] }))).toBeNull();
    expect(observedIp(fixed, seen({ net: [{ mac: MAC, ips: ['198.51.100.20', '192.168.1.100'] }] }))).toBe('192.168.1.100');
    expect(observedIp(fixed, seen({ powerState: 'poweredOff', net: [{ mac: MAC, ips: ['192.168.1.100'] }] }))).toBeNull();
  });

  it('ready: the marker equals THIS instance’s id; unknowable without metadata or extraConfig', () => {
    const target = guestTarget({ name: 'web1', id: 'vm-1' }, MAC, metadataConfig(DHCP), undefined);
    expect(observedReady(target, seen({ extraConfig: new Map([[READY_KEY, INSTANCE]]) }))).toBe(true);
    expect(observedReady(target, seen({ extraConfig: new Map([[READY_KEY, 'the-source-vm']]) }))).toBe(false);
    expect(observedReady(target, seen())).toBe(false);
    expect(observedReady(target, seen({ extraConfig: null }))).toBeNull();
    expect(observedReady(guestTarget({ name: 'x', id: '1' }, MAC, new Map(), undefined), seen())).toBeNull();
    const outcome = outcomeOf(target, seen({ net: [{ mac: MAC, ips: ['198.51.100.20'] }], extraConfig: new Map([[READY_KEY, INSTANCE]]) }), null);
    expect(isSatisfied('ready', outcome)).toBe(true);
    expect(isSatisfied('ready', { ...outcome, ip: null })).toBe(false);
    expect(isSatisfied('ip', { ...outcome, ready: false })).toBe(true);
  });

  it('refuses what can never be waited for, before waiting', () => {
    const bare = guestTarget({ name: 'foreign', id: 'vm-9' }, MAC, new Map(), undefined);
    expect(errorOf(() => checkWaitable(bare, seen(), 'ready', 'api'))).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringContaining('no ceso cloud-init metadata') });
    const ceso = guestTarget({ name: 'web1', id: 'vm-1' }, MAC, metadataConfig(DHCP), undefined);
    expect(errorOf(() => checkWaitable(ceso, seen({ extraConfig: null }), 'ready', 'ssh'))).toMatchObject({ code: 'NOT_SUPPORTED', hint: expect.stringContaining('--via api') });
    expect(errorOf(() => checkWaitable(ceso, seen({ powerState: 'poweredOff' }), 'ip', 'api'))).toMatchObject({ code: 'INVALID_POWER_STATE', hint: expect.stringContaining('vm power web1 on --wait ip') });
    expect(() => checkWaitable(ceso, seen({ powerState: 'poweredOff' }), 'ready', 'api', false)).not.toThrow();
    expect(errorOf(() => checkWaitable(guestTarget({ name: 'x', id: '1' }, null, new Map(), undefined), seen(), 'ip', 'api'))).toMatchObject({ code: 'INVALID_INPUT' });
  });

  it('a timeout names what was last seen, keeps the VM, and for ready says how to check the guest', () => {
    const target = guestTarget({ name: 'web1', id: 'vm-1' }, MAC, metadataConfig(STATIC), undefined);
    const ipTimeout = timeoutError(target, seen({ toolsStatus: 'guestToolsNotRunning' }), 'ip', 2000, 'api');
    expect(ipTimeout.code).toBe('TIMEOUT');
    expect(ipTimeout.exitCode).toBe(8);
    expect(ipTimeout.message).toBe('web1: its guest did not report its address 192.168.1.100 on its NIC within 2 s (the VM is kept); last seen: powered on, VMware Tools guestToolsNotRunning, no IP address');
    expect(ipTimeout.hint).toContain('nothing was undone');
    expect(ipTimeout.details).toMatchObject({ kept: true, until: 'ip', last: { powerState: 'poweredOn', toolsStatus: 'guestToolsNotRunning', ip: null } });
    const readyTimeout = timeoutError(target, seen({ net: [{ mac: MAC, ips: ['192.168.1.100'] }] }), 'ready', 600_000, 'ssh');
    expect(readyTimeout.message).toContain('cloud-init did not report ready within 600 s');
    expect(readyTimeout.message).toContain('IP 192.168.1.100, no ready marker');
    expect(readyTimeout.hint).toContain('vmware-rpctool "info-get guestinfo.metadata"');
    expect(readyTimeout.hint).toContain('cloud-init status --long');
    expect(readyTimeout.hint).toContain('vim-cmd vmsvc/get.config');
  });

  it('--wait flags: the timeout in ms, the expected address from --ip; refused when the VM is left off', () => {
    expect(waitRequestFrom({}, { powersOn: true })).toBeUndefined();
    expect(waitRequestFrom({ wait: 'ip', 'wait-timeout': 30 }, { powersOn: true, ipCidr: '10.0.0.5/24' })).toEqual({ until: 'ip', timeoutMs: 30_000, expectedIp: '10.0.0.5' });
    expect(waitRequestFrom({ wait: 'ready' }, { powersOn: true })).toEqual({ until: 'ready', timeoutMs: 600_000 });
    expect(errorOf(() => waitRequestFrom({ wait: 'ip' }, { powersOn: false, why: '--no-power-on leaves it off' }))).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringContaining('--no-power-on') });
  });
});

describe('the API path: reading the VM’s properties', () => {
  it('takes the first NIC’s MAC and the guest’s addresses from guest.net and ipConfig', () => {
    const devices: Decoded = [
      { _type: 'VirtualDisk', key: '2000' },
      { _type: 'VirtualVmxnet3', key: '4000', macAddress: '00:50:56:AA:BB:CC' },
      { _type: 'VirtualE1000', key: '4001', macAddress: '00:50:56:00:00:01' },
    ];
    expect(firstNicMac(devices)).toBe('00:50:56:aa:bb:cc');
    expect(firstNicMac([{ _type: 'VirtualDisk' }])).toBeNull();
    const props = {
      'runtime.powerState': 'poweredOn',
      'guest.toolsRunningStatus': 'guestToolsRunning',
      'guest.ipAddress': '10.0.0.5',
      'guest.net': [{ macAddress: '00:50:56:AA:BB:CC', ipAddress: '10.0.0.5', ipConfig: { ipAddress: [{ ipAddress: '10.0.0.5' }, { ipAddress: 'fe80::1' }] } }],
      'config.extraConfig': [{ key: READY_KEY, value: 'x' }],
    };
    expect(observe(props)).toEqual({
      powerState: 'poweredOn',
      toolsStatus: 'guestToolsRunning',
      guestIp: '10.0.0.5',
      net: [{ mac: '00:50:56:aa:bb:cc', ips: ['10.0.0.5', 'fe80::1'] }],
      extraConfig: new Map([[READY_KEY, 'x']]),
    });
    expect(maxWaitFor(30_000)).toBe(25);
    expect(maxWaitFor(5_000)).toBe(2);
    expect(maxWaitFor(1_000)).toBe(1);
  });

  it('reads an empty WaitForUpdatesExResponse (vcsim’s "nothing changed") as no returnval', () => {
    const envelope = (body: string): string =>
      `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>${body}</soapenv:Body></soapenv:Envelope>`;
    for (const body of ['<WaitForUpdatesExResponse xmlns="urn:vim25"></WaitForUpdatesExResponse>', '<WaitForUpdatesExResponse xmlns="urn:vim25"/>']) {
      const decoded = decodeBody(envelope(body));
      expect(decoded.name).toBe('WaitForUpdatesExResponse');
      expect(decoded.value.returnval).toBeUndefined();
    }
    const update = decodeBody(
      envelope(
        '<WaitForUpdatesExResponse xmlns="urn:vim25"><returnval><version>-</version><filterSet><filter type="PropertyFilter">session[1]x</filter>' +
          '<objectSet><kind>modify</kind><obj type="VirtualMachine">vm-42</obj><changeSet><name>guest.ipAddress</name><op>assign</op><val xsi:type="xsd:string">10.0.0.5</val></changeSet></objectSet>' +
          '</filterSet></returnval></WaitForUpdatesExResponse>',
      ),
    );
    const set = update.value.returnval as Record<string, Decoded>;
    expect(set.version).toBe('-');
    const objectSet = (set.filterSet as Record<string, Decoded>).objectSet as Record<string, Decoded>;
    expect(applyChanges({}, objectSet.changeSet)).toEqual({ 'guest.ipAddress': '10.0.0.5' });
    expect(applyChanges({ a: 'x', b: 'y' }, [{ name: 'a', op: 'remove' }, { name: 'b', op: 'assign' }])).toEqual({});
  });
});

interface Call {
  method: string;
  self: MoRef;
  args: XmlObject;
}

/** A host that answers WaitForUpdatesEx from a script; every call is recorded. */
function scriptedHost(updates: Array<Decoded | undefined | 'hang'>, read: Record<string, Decoded> = {}): { client: VimClient; calls: Call[] } {
  const calls: Call[] = [];
  const vm = new MoRef('VirtualMachine', 'vm-42');
  const client = {
    connect: async () => ({ propertyCollector: new MoRef('PropertyCollector', 'ha-property-collector'), rootFolder: new MoRef('Folder', 'ha-folder-root') }),
    invoke: async (method: string, self: MoRef, args: XmlObject = {}) => {
      calls.push({ method, self, args });
      if (method === 'CreatePropertyCollector') return new MoRef('PropertyCollector', 'session[abc]1');
      if (method === 'WaitForUpdatesEx') {
        const next = updates.shift();
        if (next === 'hang') return new Promise(() => undefined);
        return next;
      }
      if (method === 'RetrievePropertiesEx') return { objects: { obj: vm, propSet: Object.entries(read).map(([name, val]) => ({ name, val })) } };
      return undefined;
    },
  } as unknown as VimClient;
  return { client, calls };
}

const change = (version: string, changes: Record<string, Decoded>): Decoded => ({
  version,
  filterSet: { objectSet: { kind: 'modify', obj: new MoRef('VirtualMachine', 'vm-42'), changeSet: Object.entries(changes).map(([name, val]) => ({ name, op: 'assign', val })) } },
});

describe('waitForProperties: one WaitForUpdatesEx per change, never a polling loop', () => {
  const vm = new MoRef('VirtualMachine', 'vm-42');
  const base = {
    type: 'VirtualMachine',
    paths: ['runtime.powerState', 'guest.ipAddress'],
    maxWaitSeconds: 25,
    interrupted: () => new CesoError('INTERRUPTED', 'stopped'),
    check: (props: Readonly<Record<string, Decoded | undefined>>) => (typeof props['guest.ipAddress'] === 'string' && props['guest.ipAddress'] !== '' ? props['guest.ipAddress'] : undefined),
  };

  it('fresh collector, filter, versions passed back, a re-read after an empty answer, destroyed at the end', async () => {
    const { client, calls } = scriptedHost([change('-', { 'runtime.powerState': 'poweredOn', 'guest.ipAddress': '' }), undefined, change('-', { 'guest.ipAddress': '10.0.0.5' })], { 'runtime.powerState': 'poweredOn' });
    const result = await waitForProperties(client, vm, { ...base, deadline: Date.now() + 60_000 });
    expect(result).toMatchObject({ state: 'met', value: '10.0.0.5' });
    expect(calls.map((call) => call.method)).toEqual(['CreatePropertyCollector', 'CreateFilter', 'WaitForUpdatesEx', 'WaitForUpdatesEx', 'RetrievePropertiesEx', 'WaitForUpdatesEx', 'DestroyPropertyCollector']);
    const collector = calls[0] === undefined ? undefined : 'session[abc]1';
    expect(calls.filter((call) => call.method !== 'CreatePropertyCollector' && call.method !== 'RetrievePropertiesEx').every((call) => call.self.value === collector)).toBe(true);
    expect(calls[1]?.args).toMatchObject({ spec: { propSet: [{ type: 'VirtualMachine', all: false, pathSet: base.paths }], objectSet: [{ obj: vm, skip: false }] }, partialUpdates: false });
    const waits = calls.filter((call) => call.method === 'WaitForUpdatesEx').map((call) => call.args);
    expect(waits.map((args) => args.version)).toEqual(['', '-', '-']);
    expect(waits.every((args) => (args.options as { maxWaitSeconds: number }).maxWaitSeconds === 25)).toBe(true);
  });

  it('bounds maxWaitSeconds by the time left, and times out', async () => {
    const { client, calls } = scriptedHost([change('1', { 'runtime.powerState': 'poweredOn' }), undefined]);
    const result = await waitForProperties(client, vm, { ...base, deadline: Date.now() + 1500 });
    expect(result.state).toBe('timeout');
    const waits = calls.filter((call) => call.method === 'WaitForUpdatesEx');
    expect((waits[1]?.args.options as { maxWaitSeconds: number }).maxWaitSeconds).toBeLessThanOrEqual(2);
    // A host that answers "nothing changed" at once (ignoring maxWaitSeconds) is not polled in a busy loop.
    expect(waits.length).toBeLessThanOrEqual(3);
    expect(calls.at(-1)?.method).toBe('DestroyPropertyCollector');
  });

  it('Ctrl-C: CancelWaitForUpdates, INTERRUPTED at once, collector destroyed', async () => {
    const { client, calls } = scriptedHost([change('1', {}), 'hang']);
    const controller = new AbortController();
    const pending = waitForProperties(client, vm, { ...base, deadline: Date.now() + 60_000, signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 20));
    controller.abort();
    expect(await rejectionOf(pending)).toMatchObject({ code: 'INTERRUPTED' });
    expect(calls.map((call) => call.method)).toEqual(['CreatePropertyCollector', 'CreateFilter', 'WaitForUpdatesEx', 'WaitForUpdatesEx', 'CancelWaitForUpdates', 'DestroyPropertyCollector']);
  });

  it('a failing check, or the object leaving, still destroys the collector', async () => {
    const failing = scriptedHost([change('1', { 'runtime.powerState': 'poweredOff' })]);
    const stopped = waitForProperties(failing.client, vm, {
      ...base,
      deadline: Date.now() + 60_000,
      check: () => {
        throw new CesoError('INVALID_POWER_STATE', 'stopped');
      },
    });
    expect(await rejectionOf(stopped)).toMatchObject({ code: 'INVALID_POWER_STATE' });
    expect(failing.calls.at(-1)?.method).toBe('DestroyPropertyCollector');
    const leaving = scriptedHost([{ version: '2', filterSet: { objectSet: { kind: 'leave', obj: vm } } }]);
    expect(await waitForProperties(leaving.client, vm, { ...base, deadline: Date.now() + 60_000 })).toMatchObject({ state: 'gone' });
    expect(leaving.calls.at(-1)?.method).toBe('DestroyPropertyCollector');
  });
});

describe('the SSH path: get.config and a bounded poll', () => {
  const CONFIG = (extra: string): string => `Configuration:
(vim.vm.ConfigInfo) {
   name = "web1",
   hardware = (vim.vm.VirtualHardware) {
      numCPU = 2,
      device = (vim.vm.device.VirtualDevice) [
         (vim.vm.device.VirtualDisk) {
            key = 2000,
         },
         (vim.vm.device.VirtualVmxnet3) {
            key = 4000,
            macAddress = "${MAC.toUpperCase()}",
         }
      ],
   },
${extra}
}
`;
  const extraConfig = (entries: Map<string, string>): string =>
    `   extraConfig = (vim.option.OptionValue) [\n${[...entries].map(([key, value]) => `      (vim.option.OptionValue) {\n         key = "${key}",\n         value = "${value}"\n      }`).join(',\n')}\n   ],`;

  it('reads the MAC and extraConfig; none shown is null, <unset> is empty', () => {
    const entries = new Map([...metadataConfig(DHCP), [READY_KEY, INSTANCE]]);
    expect(parseConfig(CONFIG(extraConfig(entries)))).toEqual({ mac: MAC, extraConfig: entries });
    expect(parseConfig(CONFIG('   extraConfig = <unset>,'))).toEqual({ mac: MAC, extraConfig: new Map() });
    expect(parseConfig(CONFIG(''))).toEqual({ mac: MAC, extraConfig: null });
  });

  it('polls get.guest and get.config in one command per look, 1 s apart at first, until the address is there', async () => {
    let looks = 0;
    const commands: string[] = [];
    const shell: RemoteShell = {
      execCount: 0,
      async close() {},
      async exec(command: string): Promise<ExecResult> {
        commands.push(command);
        if (command === 'vim-cmd vmsvc/getallvms') {
          return { code: 0, stderr: '', stdout: 'Vmid   Name   File                     Guest OS        Version   Annotation\n12     web1   [datastore1] web1/web1.vmx   ubuntu64Guest   vmx-19\n' };
        }
        looks += 1;
        const nonce = /echo '(@@ceso-[0-9a-f]+) power'/.exec(command)?.[1] ?? '';
        const ip = looks >= 2 ? `ipAddress = "198.51.100.7",\n   net = (vim.vm.GuestInfo.NicInfo) [\n      (vim.vm.GuestInfo.NicInfo) {\n         ipAddress = (string) [\n            "198.51.100.7"\n         ],\n         macAddress = "${MAC}",\n      }\n   ],` : 'ipAddress = <unset>,\n   net = <unset>,';
        const guest = `Guest information:\n\n(vim.vm.GuestInfo) {\n   toolsRunningStatus = "guestToolsRunning",\n   ${ip}\n}`;
        const config = CONFIG(extraConfig(new Map([...metadataConfig(DHCP), ...(looks >= 2 ? [[READY_KEY, INSTANCE] as [string, string]] : [])])));
        const section = (label: string, text: string): string => `${nonce} ${label}\n${text}\n${nonce} ${label} rc 0\n`;
        return { code: 0, stderr: '', stdout: section('power', 'Retrieved runtime info\nPowered on') + section('guest', guest) + section('config', config) };
      },
    };
    const context = { shell, volumesRoot: '/vmfs/volumes' };
    const now = await sshWaitForGuest(context, { name: 'web1' }, { until: 'now', timeoutMs: 0 });
    expect(now).toEqual({ name: 'web1', id: '12', ip: null, ready: false, waitedMs: null, powerState: 'poweredOn', toolsStatus: 'guestToolsRunning' });
    looks = 0;
    const started = Date.now();
    const outcome = await sshWaitForGuest(context, { name: 'web1' }, { until: 'ready', timeoutMs: 30_000 });
    expect(outcome).toMatchObject({ ip: '198.51.100.7', ready: true, powerState: 'poweredOn' });
    expect(looks).toBe(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(outcome.waitedMs).toBeGreaterThanOrEqual(900);
    expect(commands.filter((command) => command.includes('vmsvc/get.config')).length).toBe(3);
  });
});
