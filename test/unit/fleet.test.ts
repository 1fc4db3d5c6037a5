import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { resolveTarget } from '../../src/config/resolve.js';
import { CesoError } from '../../src/core/errors.js';
import { fleetExitCode, fleetResult, resolveFleet, runOnHosts, selectHosts, type Fleet } from '../../src/core/fleet.js';
import { errorOf } from '../support/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'ceso-fleet-test-'));
const CONFIG = `esxi: {host: 10.0.0.1, password: top}
hosts:
  lab1: {esxi: {host: 10.0.0.11, password: one, timeoutSeconds: 7}}
  lab2: {esxi: {host: "10.0.0.12:8443", password: "\${LAB2_PASSWORD}"}}
  lab3: {esxi: {host: 10.0.0.13, password: three}}
defaultHost: lab3
fleet: {parallel: 3}
`;

function loaded(text = CONFIG, env: NodeJS.ProcessEnv = { LAB2_PASSWORD: 'two' }) {
  const path = join(dir, `c${Math.random()}.yaml`);
  writeFileSync(path, text);
  return loadConfig(path, env);
}

describe('selectHosts', () => {
  it('one --host name (or none) is no fan-out; a comma list or --all-hosts is', () => {
    expect(selectHosts({})).toBeUndefined();
    expect(selectHosts({ host: 'lab1' })).toBeUndefined();
    expect(selectHosts({ host: 'lab1, lab2,lab1' })).toEqual({ kind: 'named', names: ['lab1', 'lab2'] });
    expect(selectHosts({ allHosts: true })).toEqual({ kind: 'all' });
    expect(selectHosts({ allHosts: false, host: 'lab1' })).toBeUndefined();
  });

  it('refuses an empty name and --host with --all-hosts', () => {
    expect(errorOf(() => selectHosts({ host: 'lab1,' }))).toMatchObject({ code: 'INVALID_INPUT' });
    expect(errorOf(() => selectHosts({ host: 'lab1', allHosts: true }))).toMatchObject({ code: 'INVALID_INPUT' });
  });
});

describe('resolveFleet', () => {
  it('--all-hosts: the top-level section as "default", then hosts: in file order; defaultHost does not redirect "default"', () => {
    const fleet = resolveFleet(loaded(), { kind: 'all' }, {}, { LAB2_PASSWORD: 'two' });
    expect(fleet.members.map((member) => [member.name, 'target' in member ? `${member.target.api.host}:${member.target.api.port}` : null])).toEqual([
      ['default', '10.0.0.1:443'],
      ['lab1', '10.0.0.11:443'],
      ['lab2', '10.0.0.12:8443'],
      ['lab3', '10.0.0.13:443'],
    ]);
    expect(fleet.parallel).toBe(3);
    expect(fleet.mode).toBe('standard');
    const lab1 = fleet.members[1];
    expect(lab1 !== undefined && 'target' in lab1 && lab1.target.api.timeoutMs).toBe(7000);
  });

  it('a host that cannot be resolved is that host’s failure; an unknown name fails the whole selection', () => {
    const fleet = resolveFleet(loaded(CONFIG, {}), { kind: 'named', names: ['lab2', 'lab1'] }, {}, {});
    expect(fleet.members[0]).toMatchObject({ name: 'lab2', error: { code: 'CONFIG_INVALID' } });
    expect(fleet.members[1]).toMatchObject({ name: 'lab1', target: { name: 'lab1' } });
    expect(errorOf(() => resolveFleet(loaded(), { kind: 'named', names: ['lab1', 'nope'] }, {}, {}))).toMatchObject({ code: 'HOST_NOT_CONFIGURED', message: expect.stringContaining('"nope"') });
  });

  it('fleet.parallel is 1 to 64; a comma list on a one-host command says so', () => {
    expect(errorOf(() => loaded('esxi: {host: 10.0.0.1}\nfleet: {parallel: 0}\n'))).toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('fleet.parallel') });
    expect(errorOf(() => resolveTarget(loaded(), { host: 'lab1,lab2' }, {}))).toMatchObject({ code: 'HOST_NOT_CONFIGURED', hint: expect.stringContaining('takes one host') });
  });

  it('without hosts: the default parallelism; CESO_MODE=restricted applies to the fan-out', () => {
    const fleet = resolveFleet(loaded('esxi: {host: 10.0.0.1, password: x}\n'), { kind: 'all' }, {}, { CESO_MODE: 'restricted' });
    expect(fleet.members.map((member) => member.name)).toEqual(['default']);
    expect(fleet.parallel).toBe(8);
    expect(fleet.mode).toBe('restricted');
  });
});

describe('runOnHosts', () => {
  function fleetOf(names: string[], parallel: number): Fleet {
    const fleet = resolveFleet(loaded(`hosts:\n${names.map((name, index) => `  ${name}: {esxi: {host: 10.0.1.${index + 1}, password: x}}\n`).join('')}`), { kind: 'all' }, {}, {});
    return { ...fleet, parallel };
  }

  it('never runs more than fleet.parallel hosts at once, and keeps the order asked whatever order they finish in', async () => {
    const names = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'h7'];
    let running = 0;
    let most = 0;
    const outcomes = await runOnHosts(fleetOf(names, 3), async (target) => {
      running += 1;
      most = Math.max(most, running);
      // later hosts finish first
      await new Promise((resolve) => setTimeout(resolve, (names.length - names.indexOf(target.name)) * 3));
      running -= 1;
      return target.name.toUpperCase();
    });
    expect(most).toBe(3);
    expect(outcomes.map((outcome) => outcome.ok && outcome.value)).toEqual(names.map((name) => name.toUpperCase()));
  });

  it('a host that throws is its own outcome; the others go on; the exit code is the first failure’s', async () => {
    const outcomes = await runOnHosts(fleetOf(['a', 'b', 'c'], 8), async (target) => {
      if (target.name === 'b') throw new CesoError('AUTH_FAILED', 'rejected');
      if (target.name === 'c') throw new Error('boom');
      return 1;
    });
    expect(outcomes.map((outcome) => (outcome.ok ? 'ok' : outcome.error.code))).toEqual(['ok', 'AUTH_FAILED', 'INTERNAL']);
    expect(fleetExitCode(outcomes)).toBe(6);
    expect(fleetExitCode([outcomes[0]!])).toBe(0);
    expect(fleetExitCode([outcomes[0]!, outcomes[2]!], () => 8)).toBe(8);
    expect(fleetResult(outcomes, (value) => ({ value }))).toEqual({
      hosts: [
        { host: 'a', ok: true, value: 1 },
        { host: 'b', ok: false, error: { code: 'AUTH_FAILED', message: 'rejected' } },
        { host: 'c', ok: false, error: { code: 'INTERNAL', message: 'boom' } },
      ],
    });
  });
});
