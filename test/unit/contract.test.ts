// The JSON contract (src/contract): real-looking outputs pass, drift (a missing field, a wrong
// enum, an omitted unknown, an extra field) fails, both in zod and in the generated JSON Schema.
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import * as z from 'zod/mini';
import { ERROR_CODES } from '../../src/core/errors.js';
import { CONTRACT, publishedSchema, type ContractCommand } from '../../src/contract/registry.js';
import { generateSchemaFiles, type JsonSchema } from '../../src/contract/generate.js';
import { schemaId } from '../../src/contract/lookup.js';

type Json = Record<string, unknown>;

const files = generateSchemaFiles();
const ajv = new Ajv2020({ allErrors: true, strict: true });
const jsonSchemaOf = (command: ContractCommand) => ajv.compile(files[`${schemaId(command)}.json`] as JsonSchema);
const errorJsonSchema = ajv.compile(files['error.json'] as JsonSchema);

/** Accepted (or rejected) by zod and by the generated JSON Schema alike. */
function verdict(command: ContractCommand, value: unknown): boolean {
  const zod = z.safeParse(publishedSchema(CONTRACT[command]), value).success;
  const json = jsonSchemaOf(command)(value);
  expect(json, `zod and JSON Schema disagree on ${JSON.stringify(value).slice(0, 200)}`).toBe(zod);
  return zod;
}

const summary = {
  name: 'web1',
  id: '42',
  uuid: '564d1c2e-0f6a-4c8b-9d2e-1a2b3c4d5e6f',
  status: 'running',
  powerState: 'poweredOn',
  cpu: 2,
  memoryMB: 2048,
  ip: '192.168.1.100',
  guestId: 'ubuntu64Guest',
  managed: true,
  expiresAt: '2030-01-01T00:00:00.000Z',
  linked: false,
  pool: null,
  poolState: null,
};

const details = {
  ...summary,
  vmxPath: '[datastore1] web1/web1.vmx',
  datastore: 'datastore1',
  firmware: 'efi',
  disks: [{ label: 'Hard disk 1', file: '[datastore1] web1/web1.vmdk', capacityGB: 20, thin: true, parent: null }],
  nics: [{ label: 'Network adapter 1', network: 'VM Network', mac: '00:50:56:01:02:03', type: 'vmxnet3' }],
  snapshots: [
    {
      name: 'base',
      id: '1',
      description: null,
      createdAt: '2024-05-01T12:00:00Z',
      state: 'poweredOff',
      current: false,
      children: [{ name: 'child', id: '2', description: 'x', createdAt: null, state: null, current: true, children: [] }],
    },
  ],
  annotation: null,
  guestinfo: [{ key: 'guestinfo.metadata', bytes: 512 }],
  markers: { 'ceso.managed': 'true', 'ceso.template': 'ubuntu-22.04-template' },
};

const unknownVm = { ...summary, uuid: null, status: null, powerState: null, cpu: null, memoryMB: null, ip: null, guestId: null, managed: false, expiresAt: null, linked: false, pool: null, poolState: null };

const plan = {
  dryRun: true,
  plan: {
    operation: 'create',
    target: 'web1',
    via: 'api',
    steps: [
      { step: 1, id: 'make-directory', description: 'Make [datastore1] web1', kind: 'api', method: 'MakeDirectory', object: 'FileManager', arguments: { name: '[datastore1] web1' } },
      { step: 2, id: 'copy-disk-0', description: 'Copy the disk', kind: 'ssh', command: "vmkfstools -i 'a.vmdk' 'b.vmdk' -d thin" },
    ],
    review: { cloudInit: { metadata: {} } },
    warnings: [],
  },
};

const stamp = <T extends object>(value: T, mode = 'standard'): T & { mode: string } => ({ ...value, mode });
const without = (value: Json, key: string): Json => Object.fromEntries(Object.entries(value).filter(([name]) => name !== key));

describe('the contract accepts real results', () => {
  it('vm list: each element with via and mode; unknowns as null', () => {
    expect(verdict('vm list', [stamp({ ...summary, via: 'api' }), stamp({ ...unknownVm, via: 'ssh' }, 'restricted')])).toBe(true);
    expect(verdict('vm list', [])).toBe(true);
  });

  it('vm info, create, clone: VM details (nested snapshots) with via', () => {
    expect(verdict('vm info', stamp({ ...details, via: 'api' }))).toBe(true);
    expect(verdict('vm create', stamp({ ...details, via: 'ssh', durationMs: 5120, ready: null, waitedMs: null }))).toBe(true);
    expect(verdict('vm create', stamp({ ...details, via: 'api', durationMs: 5120, ready: true, waitedMs: 30_250 }))).toBe(true);
    expect(verdict('vm clone', stamp({ ...details, via: 'api', durationMs: 0, ready: false, waitedMs: 12 }))).toBe(true);
    // the wait fields are never omitted
    expect(verdict('vm create', stamp({ ...details, via: 'ssh', durationMs: 5120 }))).toBe(false);
  });

  it('vm ip: the guest’s address and readiness, nulls when unknown', () => {
    const ip = { name: 'web1', id: 'vm-42', ip: '192.168.1.100', ready: true, waitedMs: 4100, powerState: 'poweredOn', toolsStatus: 'guestToolsRunning', via: 'api' };
    expect(verdict('vm ip', stamp(ip))).toBe(true);
    expect(verdict('vm ip', stamp({ ...ip, ip: null, ready: null, waitedMs: null, powerState: null, toolsStatus: null, via: 'ssh' }))).toBe(true);
    expect(verdict('vm ip', stamp(without(ip, 'ready')))).toBe(false);
    expect(verdict('vm ip', stamp({ ...ip, extra: 1 }))).toBe(false);
  });

  it('every mutation: a dry run, with or without review', () => {
    for (const command of ['vm create', 'vm clone', 'vm delete', 'vm power'] as const) {
      expect(verdict(command, stamp(plan))).toBe(true);
      expect(verdict(command, stamp({ ...plan, plan: without(plan.plan, 'review') }))).toBe(true);
    }
  });

  it('vm delete, vm power, vm reap outcomes', () => {
    expect(verdict('vm delete', stamp({ name: 'web1', id: '42', deleted: true, removed: ['[datastore1] web1/web1.vmx', '[datastore1] web1'], via: 'api', durationMs: 12 }))).toBe(true);
    const power = { name: 'web1', id: '42', action: 'off', previousState: 'poweredOn', powerState: 'poweredOff', status: 'stopped', changed: true, message: 'web1 powered off', via: 'api', durationMs: 3, ip: null, ready: null, waitedMs: null };
    expect(verdict('vm power', stamp(power))).toBe(true);
    expect(verdict('vm power', stamp({ ...power, previousState: null, powerState: null, status: null }))).toBe(true);
    const reap = { dryRun: false, checked: 3, reaped: [{ name: 'a', id: '1', expiresAt: '2020-01-01T00:00:00.000Z', deleted: true, error: null }, { name: 'b', id: '2', expiresAt: '2020-01-01T00:00:00.000Z', deleted: false, error: { code: 'TASK_FAILED', message: 'x' } }], plans: [], via: 'api' };
    expect(verdict('vm reap', stamp(reap))).toBe(true);
    expect(verdict('vm reap', stamp({ ...reap, dryRun: true, plans: [plan.plan] }))).toBe(true);
  });

  it('audit records carry their own mode; schema results carry none', () => {
    const record = { time: '2024-05-01T12:00:00.123Z', user: 'ops', host: 'lab1 (10.0.0.1:443)', command: 'vm create', arguments: { name: 'web1', password: '***' }, mode: 'restricted', via: 'api', dryRun: false, outcome: 'error', errorCode: 'POLICY_DENIED', vmId: null, vm: 'web1', durationMs: 40 };
    expect(verdict('audit', [record, { ...record, via: null, outcome: 'success', errorCode: null }])).toBe(true);
    expect(verdict('schema', { commands: [{ command: 'vm list', id: 'vm-list', summary: 'x' }] })).toBe(true);
    expect(verdict('schema', { command: 'vm list', id: 'vm-list', summary: 'x', result: {}, error: {} })).toBe(true);
  });

  it('the error envelope, with and without hint and details', () => {
    expect(errorJsonSchema({ error: { code: 'VM_NOT_FOUND', message: 'no VM named x' } })).toBe(true);
    expect(errorJsonSchema({ error: { code: 'TASK_FAILED', message: 'm', hint: 'h', details: { cleanedUp: true, leftovers: [] } } })).toBe(true);
  });
});

describe('the contract rejects drift', () => {
  it('a missing field, or an unknown omitted instead of null', () => {
    expect(verdict('vm list', [stamp(without({ ...summary, via: 'api' }, 'uuid'))])).toBe(false);
    expect(verdict('vm info', stamp(without({ ...details, via: 'api' }, 'annotation')))).toBe(false);
    expect(verdict('vm create', stamp(without({ ...details, via: 'api', durationMs: 1 }, 'durationMs')))).toBe(false);
    expect(verdict('vm power', stamp({ ...plan, plan: without(plan.plan, 'steps') }))).toBe(false);
  });

  it('a wrong enum or type', () => {
    expect(verdict('vm list', [stamp({ ...summary, via: 'local' })])).toBe(false);
    expect(verdict('vm list', [stamp({ ...summary, status: 'on', via: 'api' })])).toBe(false);
    expect(verdict('vm list', [stamp({ ...summary, via: 'api' }, 'admin')])).toBe(false);
    expect(verdict('vm list', [stamp({ ...summary, cpu: '2', via: 'api' })])).toBe(false);
    expect(verdict('vm power', stamp({ name: 'w', id: '1', action: 'restart', previousState: null, powerState: null, status: null, changed: false, message: '', via: 'api', durationMs: 1 }))).toBe(false);
    expect(verdict('vm delete', stamp({ name: 'w', id: '1', deleted: false, removed: [], via: 'api', durationMs: 1 }))).toBe(false);
    expect(verdict('vm create', stamp({ ...plan, dryRun: false }))).toBe(false);
    expect(errorJsonSchema({ error: { code: 'NOPE', message: 'm' } })).toBe(false);
    expect(errorJsonSchema({ error: { code: 'INTERNAL' } })).toBe(false);
  });

  it('an undeclared field, or a result without its mode', () => {
    expect(verdict('vm info', stamp({ ...details, via: 'api', extra: 1 }))).toBe(false);
    expect(verdict('vm list', [{ ...summary, via: 'api' }])).toBe(false);
    expect(verdict('vm create', plan)).toBe(false);
    expect(verdict('schema', stamp({ commands: [] }))).toBe(false);
    expect(errorJsonSchema({ error: { code: 'INTERNAL', message: 'm' }, mode: 'standard' })).toBe(false);
  });
});

describe('the generated files', () => {
  it('one per contract entry, plus error.json and an index naming them', () => {
    const index = files['index.json'] as { commands: Array<{ command: string; id: string }>; error: string };
    expect(index.commands.map((entry) => entry.command)).toEqual(Object.keys(CONTRACT));
    expect(Object.keys(files).sort()).toEqual([...index.commands.map((entry) => `${entry.id}.json`), 'error.json', 'index.json'].sort());
    for (const [name, document] of Object.entries(files)) {
      if (name !== 'index.json') expect(document.$schema, name).toBe('https://json-schema.org/draft/2020-12/schema');
    }
  });

  it('the error schema enumerates every code of core/errors with its exit code', () => {
    const code = ((files['error.json'] as Json).properties as { error: { properties: { code: { anyOf: Array<{ const: string; description: string }> } } } }).error.properties.code;
    expect(code.anyOf.map((option) => option.const)).toEqual(Object.keys(ERROR_CODES));
    for (const option of code.anyOf) expect(option.description).toContain(`(exit ${ERROR_CODES[option.const as keyof typeof ERROR_CODES].exit})`);
  });

  it('names a command however it is typed', () => {
    expect(['vm list', 'vm:list', 'vm-list', ' VM  list '].map(schemaId)).toEqual(['vm-list', 'vm-list', 'vm-list', 'vm-list']);
  });
});
