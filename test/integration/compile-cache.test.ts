// The launcher's compile cache (src/launcher), in fresh processes as users meet it: V8 keeps an
// in-process cache of its own, so only a new process shows whether the saved bytecode is used.
// First on a small bundle of the same shape as dist/ceso.cjs, through dist/launcher.js's
// loadBundle; then end to end through bin/run.js against the simulator.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ROOT, requireBuiltCli, runCli, type CesoWorkspace, openSimulatorWorkspace, type SimulatorWorkspace } from '../support/cli.js';
import type { Simulator } from '../support/simulator.js';

const BUNDLE_TEXT = `(function (exports, require, module, __filename, __dirname) {
"use strict";
const { basename } = require('node:path');
function greet(name) { return 'hello ' + name + ' from ' + basename(__filename); }
module.exports = { greet, sameInstance: require(__filename) === module.exports };
})
`;

interface Outcome {
  cache: string;
  cacheFile: string | null;
  greeting: string;
  sameInstance: boolean;
}

const mode = (path: string): number => statSync(path).mode & 0o777;

describe('compile cache: loadBundle in a new process each time', () => {
  let dir: string;
  let bundlePath: string;
  let cacheDir: string;

  /** Loads the bundle in a new node process with these cache settings, optionally saving the cache. */
  function load(options: { buildId?: string; key?: string; save?: boolean; cache?: boolean } = {}): Outcome {
    const script = `
      import { loadBundle } from ${JSON.stringify(join(ROOT, 'dist/launcher.js'))};
      const options = JSON.parse(process.argv[1]);
      const loaded = loadBundle(options.bundlePath, options.cache === false ? undefined : { directory: options.cacheDir, buildId: options.buildId ?? 'build1', key: options.key ?? 'vm-list' });
      const greeting = loaded.exports.greet('ceso');
      if (options.save) loaded.saveCache();
      console.log(JSON.stringify({ cache: loaded.cache, cacheFile: loaded.cacheFile ?? null, greeting, sameInstance: loaded.exports.sameInstance }));
    `;
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify({ ...options, bundlePath, cacheDir })], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(result.status, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as Outcome;
  }

  beforeAll(requireBuiltCli);
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ceso-cc-'));
    bundlePath = join(dir, 'bundle.cjs');
    writeFileSync(bundlePath, BUNDLE_TEXT);
    cacheDir = join(dir, 'home', 'cache');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('runs the bundle as the CommonJS module require() finds, with no cache when disabled', () => {
    const outcome = load({ cache: false, save: true });
    expect(outcome).toEqual({ cache: 'disabled', cacheFile: null, greeting: 'hello ceso from bundle.cjs', sameInstance: true });
    expect(existsSync(cacheDir)).toBe(false);
  });

  it('saves the bytecode privately, and the next process uses it', () => {
    const first = load({ save: true });
    expect(first.cache).toBe('missing');
    const file = first.cacheFile as string;
    expect(file).toBe(join(cacheDir, `build1-${process.versions.v8}-${process.arch}-vm-list.v8`));
    expect(mode(cacheDir)).toBe(0o700);
    expect(mode(file)).toBe(0o600);
    expect(readdirSync(cacheDir)).toEqual([`build1-${process.versions.v8}-${process.arch}-vm-list.v8`]);

    const saved = readFileSync(file);
    const second = load({ save: true });
    expect(second).toEqual({ ...first, cache: 'accepted' });
    expect(readFileSync(file).equals(saved)).toBe(true); // an accepted cache is not rewritten
  });

  it('does not save unless asked (the launcher asks only after a successful run)', () => {
    expect(load({ save: false }).cache).toBe('missing');
    expect(existsSync(cacheDir)).toBe(false);
  });

  it('ignores damaged data, runs anyway, and replaces it', () => {
    const file = load({ save: true }).cacheFile as string;
    writeFileSync(file, Buffer.alloc(4096, 7));
    const damaged = load({ save: true });
    expect(damaged.cache).toBe('rejected');
    expect(damaged.greeting).toBe('hello ceso from bundle.cjs');
    expect(readFileSync(file).equals(Buffer.alloc(4096, 7))).toBe(false);
    expect(load().cache).toBe('accepted');
  });

  it('rejects the cache of a changed bundle and runs the new text', () => {
    load({ save: true });
    writeFileSync(bundlePath, BUNDLE_TEXT.replace("'hello '", "'hi, hello '"));
    const changed = load();
    expect(changed.cache).toBe('rejected');
    expect(changed.greeting).toBe('hi, hello ceso from bundle.cjs');
  });

  it('removes the files of other builds when it writes', () => {
    load({ save: true });
    load({ save: true, key: 'vm-info' });
    expect(readdirSync(cacheDir)).toHaveLength(2);
    const next = load({ save: true, buildId: 'build2' });
    expect(next.cache).toBe('missing');
    expect(readdirSync(cacheDir)).toEqual([`build2-${process.versions.v8}-${process.arch}-vm-list.v8`]);
  });

  it('neither reads nor writes a directory others can write to', () => {
    load({ save: true });
    chmodSync(cacheDir, 0o777);
    expect(load({ save: true }).cache).toBe('unsafe-directory');
    expect(load({ save: true, key: 'vm-info' }).cache).toBe('unsafe-directory');
    expect(readdirSync(cacheDir)).toEqual([`build1-${process.versions.v8}-${process.arch}-vm-list.v8`]);
  });

  it('costs nothing but time when the cache cannot be written', () => {
    writeFileSync(join(dir, 'home'), 'a file where the directory should be');
    const outcome = load({ save: true });
    expect(outcome.greeting).toBe('hello ceso from bundle.cjs');
    expect(existsSync(cacheDir)).toBe(false);
  });
});

describe('compile cache: ceso end to end', () => {
  let sim: Simulator;
  let ws: CesoWorkspace;
  let bed: SimulatorWorkspace | undefined;
  // Coverage turns the cache off (it needs freshly instrumented code), so these runs go without it.
  const env = (): Record<string, string | undefined> => ({ ...ws.env, SIM_PASSWORD: sim.password, NODE_V8_COVERAGE: undefined });
  const cacheFiles = (): string[] => (existsSync(join(ws.home, 'cache')) ? readdirSync(join(ws.home, 'cache')).sort() : []);

  beforeAll(async () => {
    requireBuiltCli();
    bed = await openSimulatorWorkspace({ mode: 'esx', vms: 2 });
    ({ sim, ws } = bed);
  });
  afterAll(async () => {
    await bed?.close();
  });

  it('caches a command after its first successful run and answers the same from the cache', async () => {
    const cold = await runCli(['vm', 'list', '--json'], { env: env() });
    expect(cold.code, cold.stderr).toBe(0);
    expect(cacheFiles()).toEqual([expect.stringMatching(/^[0-9a-f]{16}-[\d.]+-node\.\d+-\w+-vm-list\.v8$/)]);
    expect(mode(join(ws.home, 'cache'))).toBe(0o700);
    const warm = await runCli(['vm', 'list', '--json'], { env: env() });
    expect(warm.code, warm.stderr).toBe(0);
    expect(warm.json()).toEqual(cold.json());
    expect(cacheFiles()).toHaveLength(1);
  });

  it('saves nothing for a failed run', async () => {
    const failed = await runCli(['vm', 'info', 'no-such-vm', '--json'], { env: env() });
    expect(failed.code).toBe(3);
    expect(cacheFiles().some((name) => name.endsWith('-vm-info.v8'))).toBe(false);
  });

  it('is off with CESO_NO_COMPILE_CACHE=1', async () => {
    rmSync(join(ws.home, 'cache'), { recursive: true, force: true });
    const result = await runCli(['vm', 'list', '--json'], { env: { ...env(), CESO_NO_COMPILE_CACHE: '1' } });
    expect(result.code, result.stderr).toBe(0);
    expect(existsSync(join(ws.home, 'cache'))).toBe(false);
  });
});
