// `npm run bench`: whole-process figures of ceso against peers measured in the same run, on
// VMware's simulator (and a real sshd with the ESXi shell emulator). Prints medians and ratios.
//
//   BENCH_ROUNDS=15   timed rounds per measurement (commands interleaved round by round)
//   BENCH_ONLY=list,listweight,create,ssh,import,wait,day2,pool,fleet,metrics,state,poolshared   a subset of the sections
//   BENCH_IMPORT_MIB=1024   the size of the disk data the import section streams
//   BENCH_DAY2_MIB=2048     the disk data of the VM the day-2 section backs up
//   BENCH_POOL_MIB=2048     the disk data of the template the pool section clones
//   BENCH_POOL_CLONES=10    linked clones and full copies the pool section makes (and the pool's size)
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { createCipheriv } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildOva } from '../test/support/ova.js';
import { CLI, openSimulatorWorkspace, simulatorConfig, sshConfig, workspace, type CesoWorkspace } from '../test/support/cli.js';
import { TESTBED_BIN, type Simulator } from '../test/support/simulator.js';
import { openFleetWorkspace } from '../test/support/fleet.js';
import { startSshServer } from '../test/support/sshd.js';
import { startPostgres } from '../test/support/postgres.js';
import { LocalStateStore } from '../src/state/local.js';
import { openPostgresStore } from '../src/state/postgres.js';
import type { StateStore } from '../src/state/store.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const ONLY = new Set((process.env.BENCH_ONLY ?? 'list,listweight,create,ssh,import,wait,day2,pool,fleet,metrics,state,poolshared').split(','));
const DAY2_MIB = Number(process.env.BENCH_DAY2_MIB ?? 2048);
const IMPORT_MIB = Number(process.env.BENCH_IMPORT_MIB ?? 1024);
const POOL_MIB = Number(process.env.BENCH_POOL_MIB ?? 2048);
const POOL_CLONES = Number(process.env.BENCH_POOL_CLONES ?? 10);

interface Command {
  label: string;
  file: string;
  args: string[];
  env?: Record<string, string>;
}

function timeOnce(command: Command): { ms: number; code: number | null; stdout: string; stderr: string } {
  const started = performance.now();
  const result = spawnSync(command.file, command.args, { env: { ...process.env, ...command.env }, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const ms = performance.now() - started;
  return { ms, code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** Runs the commands round-robin so drift in machine load hits all of them alike. */
function measure(commands: Command[], rounds = ROUNDS): Map<string, number> {
  return new Map([...sample(commands, rounds)].map(([label, values]) => [label, median(values)]));
}

/** As measure, giving every round's time of each command (index = round). */
function sample(commands: Command[], rounds = ROUNDS): Map<string, number[]> {
  const samples = new Map<string, number[]>(commands.map((command) => [command.label, []]));
  for (const command of commands) timeOnce(command); // warm the file cache
  for (let round = 0; round < rounds; round += 1) {
    for (const command of commands) {
      const result = timeOnce(command);
      if (result.code !== 0) throw new Error(`${command.label} failed (${result.code}): ${result.stderr.slice(0, 2000)}`);
      samples.get(command.label)?.push(result.ms);
    }
  }
  return samples;
}

const floor: Command = { label: 'node -e 0', file: process.execPath, args: ['-e', '0'] };

function ceso(ws: CesoWorkspace, sim: Simulator, label: string, ...args: string[]): Command {
  return { label, file: process.execPath, args: [CLI, ...args], env: { ...ws.env, SIM_PASSWORD: sim.password } };
}

function oracle(sim: Simulator, label: string): Command {
  return {
    label,
    file: join(TESTBED_BIN, 'oracle'),
    args: ['--url', sim.url, '--user', sim.user, '--thumbprint', sim.thumbprintSha1, 'list'],
    env: { ORACLE_PASSWORD: sim.password },
  };
}

function countLogLines(stderr: string, message: string): number {
  return stderr.split('\n').filter((line) => line.includes(`"msg":"${message}"`)).length;
}

const fmt = (ms: number): string => `${ms.toFixed(1)} ms`;
const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}x`;
const verdict = (ok: boolean): string => (ok ? 'met' : 'NOT MET');

async function withSimulator<T>(vms: number, run: (sim: Simulator, ws: CesoWorkspace) => Promise<T>): Promise<T> {
  const bed = await openSimulatorWorkspace({ mode: 'esx', vms });
  try {
    return await run(bed.sim, bed.ws);
  } finally {
    await bed.close();
  }
}

async function listSection(): Promise<void> {
  console.log(`\n## vm list (warm session, list cache and compile cache: ceso's figure is the incremental read; the plain read is in listweight), ${ROUNDS} rounds, medians`);
  const figures: Record<number, { ceso: number; uncached: number; oracle: number; floor: number; requests: number }> = {};
  for (const vms of [2, 1000]) {
    figures[vms] = await withSimulator(vms, async (sim, ws) => {
      const list = ceso(ws, sim, `ceso vm list @${vms}`, 'vm', 'list', '--json');
      timeOnce(list); // logs in, caches the session and seeds the list cache
      const debug = timeOnce({ ...list, args: [...list.args, '--log-level', 'debug'] });
      const listed = (JSON.parse(debug.stdout) as unknown[]).length;
      const uncached = { ...list, label: `ceso vm list @${vms} without the compile cache`, env: { ...list.env, CESO_NO_COMPILE_CACHE: '1' } };
      const medians = measure([floor, list, uncached, oracle(sim, `govmomi oracle list @${vms}`)]);
      return {
        ceso: medians.get(list.label) as number,
        uncached: medians.get(uncached.label) as number,
        oracle: medians.get(`govmomi oracle list @${vms}`) as number,
        floor: medians.get(floor.label) as number,
        requests: countLogLines(debug.stderr, 'soap call'),
        listed,
      };
    });
  }
  const two = figures[2] as (typeof figures)[number];
  const thousand = figures[1000] as (typeof figures)[number];
  const cesoCost = thousand.ceso - two.ceso;
  const oracleCost = thousand.oracle - two.oracle;
  const floorMs = median([two.floor, thousand.floor]);
  console.log(`node -e 0 (runtime floor)          ${fmt(floorMs)}`);
  console.log(`ceso vm list --json   @2 VMs       ${fmt(two.ceso)}   = ${ratio(two.ceso, floorMs)} the floor (target <= 2.50x: ${verdict(two.ceso / floorMs <= 2.5)})`);
  console.log(`ceso vm list --json   @1000 VMs    ${fmt(thousand.ceso)}`);
  console.log(`  without the compile cache (CESO_NO_COMPILE_CACHE=1): @2 ${fmt(two.uncached)} = ${ratio(two.uncached, floorMs)} the floor, @1000 ${fmt(thousand.uncached)}`);
  console.log(`govmomi oracle list   @2 VMs       ${fmt(two.oracle)}`);
  console.log(`govmomi oracle list   @1000 VMs    ${fmt(thousand.oracle)}`);
  console.log(`cost of 998 more VMs: ceso ${fmt(cesoCost)}, govmomi ${fmt(oracleCost)} = ${ratio(cesoCost, oracleCost)} (target <= 1.00x: ${verdict(cesoCost <= oracleCost)})`);
  console.log(`HTTP requests per warm list: @2 ${two.requests}, @1000 ${thousand.requests} (target 1: ${verdict(two.requests === 1 && thousand.requests === 1)})`);
}

/** govmomi reading the summary fields vm list reads, over the same one RetrievePropertiesEx. */
function listReference(sim: Simulator, label: string, extraConfig: 'keyed' | 'whole'): Command {
  return {
    label,
    file: join(TESTBED_BIN, 'list-reference'),
    args: ['--url', sim.url, '--user', sim.user, '--thumbprint', sim.thumbprintSha1, '--extra-config', extraConfig],
    env: { LIST_REFERENCE_PASSWORD: sim.password },
  };
}

/** The markers both readers report, per VM, to check that they read the same. */
function markersById(stdout: string): string {
  const vms = JSON.parse(stdout) as Array<Record<string, unknown>>;
  return JSON.stringify(vms.map((vm) => [vm.id, vm.managed, vm.expiresAt, vm.linked, vm.pool, vm.poolState]).sort());
}

const GUESTINFO = { 'guestinfo.userdata': 3072, 'guestinfo.metadata': 1024 };

async function listWeightSection(): Promise<void> {
  console.log(`\n## vm list at real-host weight: every VM carries 4 KB of guestinfo (random base64), ${ROUNDS} rounds, medians`);
  // Both simulators run at once and the four commands of a pair alternate round by round, so the
  // cost of 998 more VMs is taken within each round, under the same machine load.
  await withSimulator(2, (small, smallWs) =>
    withSimulator(1000, async (large, largeWs) => {
      const beds = [
        { vms: 2, sim: small, ws: smallWs },
        { vms: 1000, sim: large, ws: largeWs },
      ];
      for (const { sim } of beds) {
        await sim.control('extra-config', {
          set: { 'guestinfo.userdata.encoding': 'gzip+base64', 'guestinfo.metadata.encoding': 'gzip+base64', 'ceso.managed': 'true', 'ceso.expiresAt': '2030-01-01T00:00:00.000Z', 'ceso.pool': 'bench', 'ceso.poolState': 'ready' },
          random: GUESTINFO,
        });
      }
      // The warm list is the incremental one (list-cache.ts: WaitForUpdatesEx on the session's
      // filter): the untimed first run logs in and seeds the cache, as it caches the session.
      const lists = beds.map(({ vms, sim, ws }) => ceso(ws, sim, `ceso vm list @${vms}`, 'vm', 'list', '--json'));
      const plains = lists.map((list, index) => ({ ...list, label: `ceso vm list, plain read @${beds[index]?.vms}`, env: { ...list.env, CESO_NO_LIST_CACHE: '1' } }));
      const references = beds.map(({ vms, sim }) => listReference(sim, `govmomi same paths @${vms}`, 'keyed'));
      const bytes: number[] = [];
      const markers: string[] = [];
      for (const [index, { sim }] of beds.entries()) {
        const warm = timeOnce(lists[index] as Command); // logs in, caches the session and seeds the list cache
        const peer = timeOnce(references[index] as Command);
        if (warm.code !== 0 || peer.code !== 0) throw new Error(`listweight: ${warm.stderr.slice(0, 1000)} ${peer.stderr.slice(0, 1000)}`);
        markers.push(markersById(warm.stdout));
        if (markers[index] !== markersById(peer.stdout)) throw new Error('listweight: ceso and govmomi read different markers');
        const incremental = timeOnce(lists[index] as Command);
        if (incremental.stdout !== warm.stdout) throw new Error('listweight: the incremental list differs from the first');
        await sim.control('property-requests');
        const plain = timeOnce(plains[index] as Command);
        if (plain.stdout !== warm.stdout) throw new Error('listweight: the plain read differs from the incremental list');
        bytes.push((await sim.propertyRequests()).at(-1)?.responseBytes ?? 0);
      }
      const keyed = pairCost('ceso vm list --json, incremental (warm cache)', lists, 'govmomi, the same paths (list-reference)', references);
      const ofMedians = keyed.cost / keyed.peerCost;
      console.log(`cost of 998 more VMs: ceso (incremental read) ${fmt(keyed.cost)}, govmomi ${fmt(keyed.peerCost)} = ${ofMedians.toFixed(2)}x; median of the rounds' own ratios ${keyed.ratio.toFixed(2)}x (target <= 1.00x: ${verdict(Math.max(ofMedians, keyed.ratio) <= 1)}; then <= 0.50x: ${verdict(Math.max(ofMedians, keyed.ratio) <= 0.5)})`);
      const plain = pairCost('ceso vm list --json, plain read (CESO_NO_LIST_CACHE=1)', plains, 'govmomi, the same paths (list-reference)', references);
      console.log(`plain read (markers by key, no list cache): cost of 998 more VMs ${fmt(plain.cost)} = ${(plain.cost / plain.peerCost).toFixed(2)}x govmomi's (rounds' own ratios: ${plain.ratio.toFixed(2)}x)`);

      // a host that refuses keyed paths: ceso's fallback against govmomi reading the whole extraConfig
      for (const { sim } of beds) await sim.control('keyed-paths', { mode: 'refuse' });
      const fallbacks = lists.map((list, index) => ({ ...list, label: `ceso vm list, host refuses keyed paths @${beds[index]?.vms}` }));
      const wholes = beds.map(({ vms, sim }) => listReference(sim, `govmomi whole extraConfig @${vms}`, 'whole'));
      const wholeBytes: number[] = [];
      for (const [index, { sim }] of beds.entries()) {
        if (markersById(timeOnce(fallbacks[index] as Command).stdout) !== markers[index]) throw new Error('listweight: the fallback read different markers');
        await sim.control('property-requests');
        timeOnce(wholes[index] as Command);
        wholeBytes.push((await sim.propertyRequests()).at(-1)?.responseBytes ?? 0);
      }
      const refused = pairCost('ceso vm list --json, host refuses keyed paths (fallback)', fallbacks, 'govmomi, the whole extraConfig', wholes);
      console.log(`fallback: cost of 998 more VMs ${(refused.cost / refused.peerCost).toFixed(2)}x govmomi's on the whole extraConfig (rounds' own ratios: ${refused.ratio.toFixed(2)}x)`);
      for (const { sim } of beds) await sim.control('keyed-paths', { mode: 'support' });
      console.log(`answer of one list @1000 VMs: ${((bytes[1] ?? 0) / 1024).toFixed(0)} KiB by key, ${((wholeBytes[1] ?? 0) / 1024).toFixed(0)} KiB with the whole extraConfig`);
    }),
  );
}

/**
 * Times [ceso @2, ceso @1000] against [peer @2, peer @1000], all four alternating, prints a row
 * each and returns the medians' costs of 998 more VMs and the median of the per-round ratios.
 */
function pairCost(label: string, cesoCommands: Command[], peerLabel: string, peerCommands: Command[]): { cost: number; peerCost: number; ratio: number } {
  const [cesoSmall, cesoLarge] = cesoCommands as [Command, Command];
  const [peerSmall, peerLarge] = peerCommands as [Command, Command];
  const samples = sample([cesoSmall, peerSmall, cesoLarge, peerLarge]);
  const of = (command: Command): number[] => samples.get(command.label) ?? [];
  const row = (text: string, small: number[], large: number[]): void =>
    console.log(`${text.padEnd(58)} @2 ${fmt(median(small)).padStart(10)}   @1000 ${fmt(median(large)).padStart(10)}   998 more VMs ${fmt(median(large) - median(small)).padStart(10)}`);
  row(label, of(cesoSmall), of(cesoLarge));
  row(peerLabel, of(peerSmall), of(peerLarge));
  const ratios = of(cesoLarge).map((large, round) => (large - (of(cesoSmall)[round] ?? 0)) / ((of(peerLarge)[round] ?? 0) - (of(peerSmall)[round] ?? 0)));
  return { cost: median(of(cesoLarge)) - median(of(cesoSmall)), peerCost: median(of(peerLarge)) - median(of(peerSmall)), ratio: median(ratios) };
}

function runAsync(command: Command): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(command.file, command.args, { env: { ...process.env, ...command.env } });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

async function createSection(): Promise<void> {
  const cycles = Math.max(3, Math.round(ROUNDS / 3));
  console.log(`\n## vm create then vm delete (standalone ESXi path), ${cycles} cycles, medians`);
  await withSimulator(2, async (sim, ws) => {
    const before = await sim.listFiles();
    timeOnce(ceso(ws, sim, 'warm', 'vm', 'list', '--json'));
    const creates: number[] = [];
    const deletes: number[] = [];
    const lists: number[] = [];
    const floors: number[] = [];
    let requests = 0;
    for (let cycle = 0; cycle < cycles; cycle += 1) {
      const create = timeOnce(ceso(ws, sim, 'create', 'vm', 'create', 'bench-1', '--ip', '10.9.0.10/24', '--json', '--log-level', 'debug'));
      if (create.code !== 0) throw new Error(`create failed: ${create.stdout}`);
      requests = countLogLines(create.stderr, 'soap call');
      creates.push(create.ms);
      const remove = timeOnce(ceso(ws, sim, 'delete', 'vm', 'delete', 'bench-1', '--force', '--yes', '--json'));
      if (remove.code !== 0) throw new Error(`delete failed: ${remove.stdout}`);
      deletes.push(remove.ms);
      lists.push(timeOnce(ceso(ws, sim, 'list', 'vm', 'list', '--json')).ms);
      floors.push(timeOnce(floor).ms);
    }
    console.log(`ceso vm create (copy disk, create, guestinfo, power on)  ${fmt(median(creates))} = ${ratio(median(creates), median(lists))} a warm vm list`);
    console.log(`ceso vm delete --force (power off, destroy, check)       ${fmt(median(deletes))} = ${ratio(median(deletes), median(lists))} a warm vm list`);
    console.log(`ceso vm list (peer in this run)                          ${fmt(median(lists))}; node -e 0 ${fmt(median(floors))}`);
    console.log(`HTTP requests per create, warm session: ${requests}`);

    const concurrent = 20;
    const started = performance.now();
    const made = await Promise.all(
      Array.from({ length: concurrent }, (_, index) => runAsync(ceso(ws, sim, 'create', 'vm', 'create', `bench-c${index}`, '--no-power-on', '--json'))),
    );
    const createWall = performance.now() - started;
    const failedCreates = made.filter((result) => result.code !== 0);
    const removedStart = performance.now();
    const removed = await Promise.all(
      Array.from({ length: concurrent }, (_, index) => runAsync(ceso(ws, sim, 'delete', 'vm', 'delete', `bench-c${index}`, '--force', '--yes', '--json'))),
    );
    const deleteWall = performance.now() - removedStart;
    const failedDeletes = removed.filter((result) => result.code !== 0);
    const after = await sim.listFiles();
    const leftovers = after.filter((file) => !before.includes(file));
    console.log(
      `${concurrent} concurrent creates: ${concurrent - failedCreates.length}/${concurrent} succeeded in ${fmt(createWall)} wall ` +
        `(${ratio(createWall, median(creates) * concurrent)} of ${concurrent} sequential creates); ` +
        `${concurrent} concurrent deletes: ${concurrent - failedDeletes.length}/${concurrent} in ${fmt(deleteWall)}; leftover files: ${leftovers.length}`,
    );
    for (const failure of [...failedCreates, ...failedDeletes].slice(0, 3)) console.log(`  failure: ${failure.stdout.slice(0, 300)}`);
  });
}

async function sshSection(): Promise<void> {
  console.log(`\n## vm list over SSH at 100 VMs, ${ROUNDS} rounds, medians`);
  await withSimulator(100, async (sim, ws) => {
    const sshd = await startSshServer({ sim });
    try {
      ws.writeConfig(sshConfig(sim, sshd));
      const overSsh = ceso(ws, sim, 'ceso vm list --via ssh @100', 'vm', 'list', '--json', '--via', 'ssh');
      const overApi = ceso(ws, sim, 'ceso vm list --via api @100', 'vm', 'list', '--json', '--via', 'api');
      timeOnce(overApi);
      const debug = timeOnce({ ...overSsh, args: [...overSsh.args, '--log-level', 'debug'] });
      if (debug.code !== 0) throw new Error(`ssh list failed: ${debug.stdout}${debug.stderr.slice(0, 2000)}`);
      const connections = countLogLines(debug.stderr, 'ssh connected');
      const execs = countLogLines(debug.stderr, 'ssh exec');
      const medians = measure([floor, overApi, overSsh], Math.max(5, Math.round(ROUNDS / 2)));
      const sshMs = medians.get(overSsh.label) as number;
      const apiMs = medians.get(overApi.label) as number;
      console.log(`ceso vm list --via ssh  ${fmt(sshMs)} = ${ratio(sshMs, apiMs)} the API path (${fmt(apiMs)}) in this run; node -e 0 ${fmt(medians.get(floor.label) as number)}`);
      console.log(`SSH connections ${connections}, exec round trips ${execs} (target 1 connection, <= 2 execs: ${verdict(connections === 1 && execs <= 2)})`);
      console.log('  (each emulated vim-cmd logs in to the simulator over HTTPS, so a real host answers faster than this test bed)');
    } finally {
      await sshd.stop();
    }
  });
}

/** Runs a command, sampling its peak resident set (VmHWM) from /proc while it runs. */
function runMeasured(command: Command): Promise<{ ms: number; code: number | null; stdout: string; stderr: string; peakRssMB: number; endedAt: number }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(command.file, command.args, { env: { ...process.env, ...command.env } });
    let stdout = '';
    let stderr = '';
    let peakKB = 0;
    const sample = (): void => {
      try {
        const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (match) peakKB = Math.max(peakKB, Number(match[1]));
      } catch {
        // exited
      }
    };
    const timer = setInterval(sample, 20);
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', () => sample());
    child.on('close', (code) => {
      clearInterval(timer);
      resolve({ ms: performance.now() - started, code, stdout, stderr, peakRssMB: peakKB / 1024, endedAt: Date.now() });
    });
  });
}

async function importSection(): Promise<void> {
  const rounds = Math.max(3, Math.round(ROUNDS / 5));
  console.log(`\n## template import of a ${IMPORT_MIB} MiB disk (incompressible data), ${rounds} rounds, medians`);
  const work = mkdtempSync(join(tmpdir(), 'ceso-bench-ova-'));
  try {
    const fixture = await buildOva(work, { capacityMiB: IMPORT_MIB, dataMiB: IMPORT_MIB, serialPort: false, seed: 'bench' });
    await withSimulator(2, async (sim, ws) => {
      timeOnce(ceso(ws, sim, 'warm', 'vm', 'list', '--json'));
      const cesoTimes: number[] = [];
      const peerTimes: number[] = [];
      const peaks: number[] = [];
      const peerUploads: number[] = [];
      for (let round = 0; round < rounds; round += 1) {
        const mine = await runMeasured(ceso(ws, sim, 'import', 'template', 'import', fixture.ova, '--name', `bench-import-${round}`, '--json'));
        if (mine.code !== 0) throw new Error(`ceso import failed: ${mine.stdout}${mine.stderr.slice(0, 2000)}`);
        cesoTimes.push(mine.ms);
        peaks.push(mine.peakRssMB);
        const peer = await runMeasured({
          label: 'govmomi import',
          file: join(TESTBED_BIN, 'oracle'),
          args: ['--url', sim.url, '--user', sim.user, '--thumbprint', sim.thumbprintSha1, 'import', fixture.ovf, `bench-peer-${round}`],
          env: { ORACLE_PASSWORD: sim.password },
        });
        if (peer.code !== 0) throw new Error(`govmomi import failed: ${peer.stderr.slice(0, 2000)}`);
        peerTimes.push(peer.ms);
        peerUploads.push((JSON.parse(peer.stdout) as { uploadMs: number }).uploadMs);
        for (const name of [`bench-import-${round}`, `bench-peer-${round}`]) {
          const removed = timeOnce(ceso(ws, sim, 'delete', 'vm', 'delete', name, '--force', '--yes', '--json'));
          if (removed.code !== 0) throw new Error(`delete ${name} failed: ${removed.stdout}`);
        }
      }
      const mb = fixture.vmdkBytes / 1024 ** 2;
      const cesoRate = mb / (median(cesoTimes) / 1000);
      const peerRate = mb / (median(peerTimes) / 1000);
      console.log(`streamed VMDK: ${mb.toFixed(0)} MiB (capacity ${IMPORT_MIB} MiB)`);
      console.log(`ceso template import (whole process)        ${fmt(median(cesoTimes))} = ${cesoRate.toFixed(1)} MiB/s`);
      console.log(`govmomi import, one plain HTTP POST of the same bytes to the same lease endpoint (whole process) ${fmt(median(peerTimes))} = ${peerRate.toFixed(1)} MiB/s; its upload alone ${fmt(median(peerUploads))}`);
      console.log(`throughput ratio ceso / plain upload: ${(cesoRate / peerRate).toFixed(2)} (target >= 0.80: ${verdict(cesoRate / peerRate >= 0.8)})`);
      console.log(`ceso peak RSS during the import: median ${median(peaks).toFixed(1)} MB, max ${Math.max(...peaks).toFixed(1)} MB (target <= 100 MB: ${verdict(Math.max(...peaks) <= 100)})`);
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function waitSection(): Promise<void> {
  const rounds = Math.max(5, Math.round(ROUNDS / 2));
  const delayMs = 2000;
  console.log(`\n## vm power on --wait ip: time from the guest reporting its IP to ceso returning, ${rounds} rounds, medians`);
  await withSimulator(2, async (sim, ws) => {
    const created = timeOnce(ceso(ws, sim, 'create', 'vm', 'create', 'bench-wait', '--ip', '10.9.0.20/24', '--no-power-on', '--json'));
    if (created.code !== 0) throw new Error(`create failed: ${created.stdout}`);
    await sim.control('delay', { method: 'guest.ipAddress', ms: delayMs });
    const overheads: number[] = [];
    const floors: number[] = [];
    let requests = 0;
    for (let round = 0; round < rounds; round += 1) {
      const run = await runMeasured(ceso(ws, sim, 'wait', 'vm', 'power', 'bench-wait', 'on', '--wait', 'ip', '--json', '--log-level', 'debug'));
      if (run.code !== 0) throw new Error(`power on --wait ip failed: ${run.stdout}${run.stderr.slice(0, 2000)}`);
      const vm = await sim.oracle<{ bootTime?: string | null }>('vm', 'bench-wait');
      const info = JSON.parse(timeOnce(ceso(ws, sim, 'info', 'vm', 'info', 'bench-wait', '--json')).stdout) as { bootTime?: string | null };
      const boot = Date.parse(vm.bootTime ?? info.bootTime ?? '');
      if (!Number.isFinite(boot)) throw new Error('no boot time to measure from');
      overheads.push(run.endedAt - (boot + delayMs));
      requests = run.stderr.split('\n').filter((line) => /"method":"WaitForUpdatesEx"/.test(line)).length;
      floors.push(timeOnce(floor).ms);
      const off = timeOnce(ceso(ws, sim, 'off', 'vm', 'power', 'bench-wait', 'off', '--json'));
      if (off.code !== 0) throw new Error(`power off failed: ${off.stdout}`);
    }
    console.log(`guest IP reported ${delayMs} ms after boot; ceso returned ${fmt(median(overheads))} after it (max ${fmt(Math.max(...overheads))}); target <= 1000 ms: ${verdict(median(overheads) <= 1000)}`);
    console.log(`  (includes the process exit; node -e 0 takes ${fmt(median(floors))}); WaitForUpdatesEx calls in the last wait: ${requests}`);
  });
}

async function day2Section(): Promise<void> {
  const rounds = Math.max(3, Math.round(ROUNDS / 5));
  console.log(`\n## day-2: hot backup of a VM with ${DAY2_MIB} MiB of disk data, snapshot round trip, reconfigure requests; ${rounds} rounds, medians`);
  const work = mkdtempSync(join(tmpdir(), 'ceso-bench-day2-'));
  try {
    const fixture = await buildOva(work, { capacityMiB: DAY2_MIB, dataMiB: DAY2_MIB, serialPort: false, seed: 'day2' });
    await withSimulator(2, async (sim, ws) => {
      const must = (label: string, result: { code: number | null; stdout: string; stderr: string }): void => {
        if (result.code !== 0) throw new Error(`${label} failed (${result.code}): ${result.stdout.slice(0, 1000)}${result.stderr.slice(0, 1000)}`);
      };
      must('import', timeOnce(ceso(ws, sim, 'import', 'template', 'import', fixture.ova, '--name', 'bench-data', '--json')));
      must('create', timeOnce(ceso(ws, sim, 'create', 'vm', 'create', 'bench-b', '--template', 'bench-data', '--ip', '10.9.0.30/24', '--json')));
      const backups: number[] = [];
      const copies: number[] = [];
      for (let round = 0; round < rounds; round += 1) {
        const backup = timeOnce(ceso(ws, sim, 'backup', 'vm', 'backup', 'bench-b', '--to', 'datastore1/bench-backups', '--keep', '1', '--json'));
        must('backup', backup);
        backups.push(backup.ms);
        const copy = timeOnce({
          label: 'copy',
          file: join(TESTBED_BIN, 'oracle'),
          args: ['--url', sim.url, '--user', sim.user, '--thumbprint', sim.thumbprintSha1, 'copy-disk', '[datastore1] bench-b/bench-b.vmdk', `[datastore1] bench-b/peer-${round}.vmdk`],
          env: { ORACLE_PASSWORD: sim.password },
        });
        must('copy-disk', copy);
        copies.push(copy.ms);
        for (const file of [`peer-${round}.vmdk`, `peer-${round}-flat.vmdk`]) rmSync(join(sim.datastoreDir, 'bench-b', file), { force: true });
      }
      console.log(`ceso vm backup (running VM: .vmx, snapshot, thin disk copy, consolidate, manifest, rotation)  ${fmt(median(backups))}`);
      console.log(`bare CopyVirtualDisk_Task of the same disk (govmomi, whole process)                           ${fmt(median(copies))}`);
      console.log(`ratio backup / bare copy: ${ratio(median(backups), median(copies))} (target <= 1.20x: ${verdict(median(backups) / median(copies) <= 1.2)})`);

      const info = ceso(ws, sim, 'info', 'vm', 'info', 'bench-b', '--json');
      const trips: number[] = [];
      const infos: number[] = [];
      for (let round = 0; round < Math.max(5, rounds); round += 1) {
        const started = performance.now();
        must('snapshot create', timeOnce(ceso(ws, sim, 'snap', 'vm', 'snapshot', 'create', 'bench-b', `s${round}`, '--memory', '--json')));
        must('snapshot revert', timeOnce(ceso(ws, sim, 'revert', 'vm', 'snapshot', 'revert', 'bench-b', `s${round}`, '--json')));
        trips.push(performance.now() - started);
        must('snapshot delete', timeOnce(ceso(ws, sim, 'snapdel', 'vm', 'snapshot', 'delete', 'bench-b', `s${round}`, '--yes', '--json')));
        infos.push(timeOnce(info).ms);
      }
      console.log(`snapshot create --memory + revert (two processes)  ${fmt(median(trips))} = ${ratio(median(trips), median(infos))} a warm vm info (${fmt(median(infos))})`);

      must('power off', timeOnce(ceso(ws, sim, 'off', 'vm', 'power', 'bench-b', 'off', '--json')));
      const reconfigure = timeOnce(ceso(ws, sim, 'reconfigure', 'vm', 'reconfigure', 'bench-b', '--cpu', '4', '--memory', '8', '--annotation', 'bench', '--json', '--log-level', 'debug'));
      must('reconfigure', reconfigure);
      const requests = countLogLines(reconfigure.stderr, 'soap call');
      console.log(`HTTP requests per vm reconfigure (cpu, memory, annotation; warm session): ${requests} (target <= 4: ${verdict(requests <= 4)})`);
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function fleetSection(): Promise<void> {
  const hosts = 10;
  console.log(`\n## vm list --all-hosts over ${hosts} simulated hosts (fleet.parallel 8, warm sessions) against one host, ${ROUNDS} rounds, medians`);
  const bed = await openFleetWorkspace(hosts, { vms: 20 });
  try {
    const command = (label: string, ...args: string[]): Command => ({ label, file: process.execPath, args: [CLI, ...args], env: bed.env });
    const all = command(`ceso vm list --all-hosts (${hosts} hosts)`, 'vm', 'list', '--all-hosts', '--json');
    const one = command('ceso vm list --host lab1', 'vm', 'list', '--host', 'lab1', '--json');
    const warm = timeOnce(all); // logs in to every host and caches the sessions
    const answered = (JSON.parse(warm.stdout) as { hosts: Array<{ ok: boolean }> }).hosts.filter((entry) => entry.ok).length;
    const medians = measure([one, all]);
    const allMs = medians.get(all.label) as number;
    const oneMs = medians.get(one.label) as number;
    console.log(`ceso vm list --host lab1                ${fmt(oneMs)}`);
    console.log(`ceso vm list --all-hosts (${answered}/${hosts} answered)  ${fmt(allMs)} = ${ratio(allMs, oneMs)} one host (target <= 2.00x: ${verdict(allMs / oneMs <= 2)})`);
  } finally {
    await bed.close();
  }
}

async function metricsSection(): Promise<void> {
  const vms = 1000;
  const records = 5000;
  console.log(`\n## ceso metrics at ${vms} VMs (audit trail of ${records} records) against a warm vm list, ${ROUNDS} rounds, medians`);
  await withSimulator(vms, async (sim, ws) => {
    const lines = Array.from({ length: records }, (_, index) =>
      JSON.stringify({
        time: new Date(Date.now() - index * 60_000).toISOString(),
        user: 'bench',
        host: `default (${sim.hostPort})`,
        command: ['vm create', 'vm delete', 'vm power', 'vm reap'][index % 4],
        arguments: {},
        mode: 'standard',
        via: 'api',
        dryRun: index % 10 === 0,
        outcome: index % 7 === 0 ? 'error' : 'success',
        errorCode: index % 7 === 0 ? 'TIMEOUT' : null,
        vmId: null,
        vm: `bench-${index}`,
        durationMs: (index % 600) * 1000,
      }),
    );
    appendFileSync(join(ws.home, 'audit.log'), `${lines.join('\n')}\n`, { mode: 0o600 });
    const list = ceso(ws, sim, `ceso vm list @${vms}`, 'vm', 'list', '--json');
    const metrics = ceso(ws, sim, `ceso metrics @${vms}`, 'metrics');
    timeOnce(list); // logs in and caches the session
    const medians = measure([list, metrics]);
    const listMs = medians.get(list.label) as number;
    const metricsMs = medians.get(metrics.label) as number;
    console.log(`ceso vm list --json  @${vms} VMs   ${fmt(listMs)}`);
    console.log(`ceso metrics         @${vms} VMs   ${fmt(metricsMs)} = ${ratio(metricsMs, listMs)} a warm vm list`);
  });
}

async function stateSection(): Promise<void> {
  console.log(`\n## shared state: VM lock acquire + release, PostgreSQL against the local lock files; ${ROUNDS} rounds, medians`);
  const pg = await startPostgres();
  const home = mkdtempSync(join(tmpdir(), 'ceso-bench-state-'));
  try {
    const url = await pg.createDatabase('bench');
    const local = new LocalStateStore(home);
    const shared = await openPostgresStore({ backend: 'postgres', url, connectTimeoutMs: 5000, lockTtlMs: 60_000 });
    try {
      const cycle = async (store: StateStore): Promise<number> => {
        const started = performance.now();
        const lock = await store.acquireLock({ host: '127.0.0.1:443', vm: 'bench-vm', command: 'ceso bench', timeoutMs: 0 });
        await lock.release();
        return performance.now() - started;
      };
      const samples = { local: [] as number[], postgres: [] as number[] };
      for (let warm = 0; warm < 5; warm += 1) await Promise.all([cycle(local), cycle(shared)].map((promise) => promise.catch(() => 0)));
      for (let round = 0; round < ROUNDS * 20; round += 1) {
        samples.local.push(await cycle(local));
        samples.postgres.push(await cycle(shared));
      }
      const [l, p] = [median(samples.local), median(samples.postgres)];
      console.log(`in one process (warm connection), ${ROUNDS * 20} alternating cycles: local ${l.toFixed(2)} ms, postgres ${p.toFixed(2)} ms: added ${(p - l).toFixed(2)} ms per acquire + release`);
    } finally {
      await shared.close();
    }

    // A whole command that takes the VM lock and writes an audit record: vm power on of a VM already on (no change).
    await withSimulator(1, async (sim, ws) => {
      const create = timeOnce(ceso(ws, sim, 'create', 'vm', 'create', 'bench-lock', '--json'));
      if (create.code !== 0) throw new Error(`create failed: ${create.stdout}`);
      const onLocal = ceso(ws, sim, 'vm power (local state)', 'vm', 'power', 'bench-lock', 'on', '--json');
      // Another machine (its own CESO_HOME, so its own session and compile caches) with the state in PostgreSQL.
      const pgConfig = join(home, 'config.yaml');
      writeFileSync(pgConfig, `${readFileSync(ws.configPath, 'utf8')}state:\n  backend: postgres\n  url: ${url}\n`, { mode: 0o600 });
      const base = ceso(ws, sim, 'vm power (postgres state)', 'vm', 'power', 'bench-lock', 'on', '--json');
      const onPostgres: Command = { ...base, env: { ...base.env, CESO_HOME: home, CESO_CONFIG: pgConfig } };
      const medians = measure([onLocal, onPostgres]);
      const [l, p] = [medians.get(onLocal.label) as number, medians.get(onPostgres.label) as number];
      console.log(`whole process (vm power on, already on: lock, read, audit): local ${fmt(l)}, postgres ${fmt(p)}: added ${fmt(p - l)} (= ${ratio(p, l)}; pg load, connect, schema check, lock row, audit row)`);
    });
  } finally {
    rmSync(home, { recursive: true, force: true });
    await pg.stop();
  }
}

/** The nearest-rank percentile (p in 0..100) of the values. */
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

/** Writes `mib` MiB of incompressible bytes (an AES-CTR keystream) at the start of a (sparse) flat extent. */
function writeDiskData(file: string, mib: number, seed: string): void {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16, 0));
  const zeros = Buffer.alloc(4 << 20);
  const fd = openSync(file, 'r+');
  try {
    for (let offset = 0; offset < mib * 1024 * 1024; offset += zeros.length) writeSync(fd, cipher.update(zeros), 0, zeros.length, offset);
  } finally {
    closeSync(fd);
  }
}

/** Bytes under a datastore folder: as listed (apparent sizes) and as stored (allocated blocks, stat.blocks * 512). */
function folderUsage(dir: string): { apparent: number; allocated: number } {
  let apparent = 0;
  let allocated = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      const inner = folderUsage(path);
      apparent += inner.apparent;
      allocated += inner.allocated;
    } else {
      const stat = statSync(path);
      apparent += stat.size;
      allocated += stat.blocks * 512;
    }
  }
  return { apparent, allocated };
}

function soapMethods(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((line) => line.includes('"msg":"soap call"'))
    .map((line) => /"method":"([^"]+)"/.exec(line)?.[1] ?? '?');
}

/** Asks the simulator for its goroutines (SIGQUIT: Go prints them and exits), to see where a call hung. */
async function dumpSimulator(sim: Simulator, what: string): Promise<void> {
  process.kill(sim.pid, 'SIGQUIT');
  const deadline = Date.now() + 5000;
  while (!sim.logs().includes('goroutine ') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  const file = join(tmpdir(), `ceso-bench-simulator-${Date.now()}.log`);
  writeFileSync(file, sim.logs());
  console.log(`${what} failed: the simulator's log and goroutines are in ${file}`);
}

async function poolSection(): Promise<void> {
  const clones = POOL_CLONES;
  const rounds = Math.max(20, ROUNDS);
  console.log(`\n## linked clones and the warm pool: a template with ${POOL_MIB} MiB of disk data; ${clones} linked and ${clones} full creates alternated, ${rounds} acquire rounds; medians`);
  await withSimulator(1, async (sim, ws) => {
    const must = <R extends { code: number | null; stdout: string; stderr: string }>(label: string, result: R): R => {
      if (result.code !== 0) throw new Error(`${label} failed (${result.code}): ${result.stdout.slice(0, 1000)}${result.stderr.slice(-1500)}`);
      return result;
    };
    const template = sim.template ?? 'ubuntu-22.04-template';
    writeDiskData(join(sim.datastoreDir, template, `${template}-flat.vmdk`), POOL_MIB, 'pool');
    ws.writeConfig(
      simulatorConfig(sim, `pools:\n  bench: {template: ${template}, size: ${clones}, max: ${clones}, linked: true, lease: 1h, maxResets: 1000, parallel: 4}\n`),
    );
    const templateBefore = folderUsage(join(sim.datastoreDir, template));
    must('warm', timeOnce(ceso(ws, sim, 'warm', 'vm', 'list', '--json')));
    // Not counted: the first linked create takes the template's base snapshot (once), the first full copy warms the file cache.
    const firstLinked = must('first linked create', timeOnce(ceso(ws, sim, 'linked', 'vm', 'create', 'bench-l0', '--linked', '--json', '--log-level', 'debug')));
    must('full warm-up', timeOnce(ceso(ws, sim, 'full', 'vm', 'create', 'bench-f0', '--json')));
    must('delete warm-up', timeOnce(ceso(ws, sim, 'delete', 'vm', 'delete', 'bench-f0', '--force', '--yes', '--json')));
    must('delete warm-up', timeOnce(ceso(ws, sim, 'delete', 'vm', 'delete', 'bench-l0', '--force', '--yes', '--json')));
    const linkedMs: number[] = [];
    const fullMs: number[] = [];
    const requests: number[] = [];
    let methods: string[] = [];
    for (let round = 1; round <= clones; round += 1) {
      const pair = [
        ceso(ws, sim, 'linked', 'vm', 'create', `bench-l${round}`, '--linked', '--json', '--log-level', 'debug'),
        ceso(ws, sim, 'full', 'vm', 'create', `bench-f${round}`, '--json', '--log-level', 'debug'),
      ];
      for (const command of round % 2 === 0 ? pair.reverse() : pair) {
        const result = must(`${command.label} create`, timeOnce(command));
        if (command.label === 'linked') {
          linkedMs.push(result.ms);
          methods = soapMethods(result.stderr);
          requests.push(methods.length);
        } else fullMs.push(result.ms);
      }
    }
    const linked = median(linkedMs);
    const full = median(fullMs);
    const linkedRequests = median(requests);
    console.log(`ceso vm create --linked (child disk in CreateVM_Task, power on)   ${fmt(linked)} (min ${fmt(Math.min(...linkedMs))}, max ${fmt(Math.max(...linkedMs))})`);
    console.log(`ceso vm create, full copy of the disk (peer in this run)          ${fmt(full)} (min ${fmt(Math.min(...fullMs))}, max ${fmt(Math.max(...fullMs))})`);
    console.log(`ratio linked / full: ${ratio(linked, full)} (target <= 0.10x: ${verdict(linked / full <= 0.1)})`);
    console.log(
      `SOAP requests per linked create, warm session (counted from --log-level debug "soap call" lines): median ${linkedRequests}, max ${Math.max(...requests)} ` +
        `(target <= 10: ${verdict(Math.max(...requests) <= 10)}); the first one, which takes the base snapshot: ${countLogLines(firstLinked.stderr, 'soap call')}`,
    );
    console.log(`  the last: ${methods.join(', ')}`);

    // 5. Space: the clones' own folders, plus what the base snapshot added to the template's folder (counted once, on the linked side).
    const sum = (prefix: string): { apparent: number; allocated: number } => {
      let apparent = 0;
      let allocated = 0;
      for (let index = 1; index <= clones; index += 1) {
        const usage = folderUsage(join(sim.datastoreDir, `${prefix}${index}`));
        apparent += usage.apparent;
        allocated += usage.allocated;
      }
      return { apparent, allocated };
    };
    const templateAfter = folderUsage(join(sim.datastoreDir, template));
    const baseGrowth = templateAfter.allocated - templateBefore.allocated;
    const linkedBytes = sum('bench-l');
    const fullBytes = sum('bench-f');
    const mib = (bytes: number): string => (bytes < 1024 ** 2 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`);
    console.log(
      `datastore bytes of ${clones} linked clones: ${mib(linkedBytes.allocated)} allocated (+ ${mib(baseGrowth)} the base snapshot added to the template's folder), ` +
        `${mib(linkedBytes.apparent)} apparent`,
    );
    console.log(`datastore bytes of ${clones} full copies:   ${mib(fullBytes.allocated)} allocated, ${mib(fullBytes.apparent)} apparent (the flat extents are sparse files)`);
    console.log(
      `ratio linked / full, allocated blocks (stat.blocks*512) incl. the base's delta: ${((linkedBytes.allocated + baseGrowth) / fullBytes.allocated).toPrecision(2)}x ` +
        `(1/${Math.round(fullBytes.allocated / (linkedBytes.allocated + baseGrowth))}); apparent sizes: ${(linkedBytes.apparent / fullBytes.apparent).toPrecision(2)}x`,
    );
    for (let index = 1; index <= clones; index += 1) {
      for (const name of [`bench-l${index}`, `bench-f${index}`]) must(`delete ${name}`, timeOnce(ceso(ws, sim, 'delete', 'vm', 'delete', name, '--force', '--yes', '--json')));
    }

    // 2.-3. A full pool: acquire against a warm vm info, alternated; each lease released (until ready) before the next round.
    const fill = timeOnce(ceso(ws, sim, 'fill', 'pool', 'fill', 'bench', '--json'));
    if (fill.code !== 0) await dumpSimulator(sim, 'pool fill');
    must('pool fill', fill);
    const filled = JSON.parse(fill.stdout) as { built: { name: string }[]; counts: { ready: number } };
    if (filled.counts.ready !== clones) throw new Error(`pool fill left ${filled.counts.ready} of ${clones} VMs ready: ${fill.stdout.slice(0, 1000)}`);
    console.log(`ceso pool fill (${clones} linked members: create, power on, ready, golden snapshot with memory; 4 at once)  ${fmt(fill.ms)}`);
    const info = ceso(ws, sim, 'info', 'vm', 'info', filled.built[0]?.name ?? 'bench-001', '--json');
    const acquireCommand = ceso(ws, sim, 'acquire', 'pool', 'acquire', 'bench', '--holder', 'bench', '--json');
    must('info warm-up', timeOnce(info));
    const acquires: number[] = [];
    const infos: number[] = [];
    const releases: number[] = [];
    for (let round = 0; round < rounds; round += 1) {
      let lease: { leaseId: string; vm: string } | undefined;
      const steps = [
        (): void => {
          const result = must('pool acquire', timeOnce(acquireCommand));
          acquires.push(result.ms);
          lease = JSON.parse(result.stdout) as { leaseId: string; vm: string };
        },
        (): void => void infos.push(must('vm info', timeOnce(info)).ms),
      ];
      for (const step of round % 2 === 0 ? steps : steps.reverse()) step();
      const released = must('pool release', timeOnce(ceso(ws, sim, 'release', 'pool', 'release', 'bench', '--lease', lease?.leaseId ?? '', '--json')));
      const outcome = JSON.parse(released.stdout) as { state: string; method: string };
      if (outcome.state !== 'ready' || outcome.method !== 'revert') throw new Error(`pool release did not revert to ready: ${released.stdout}`);
      releases.push(released.ms);
    }
    const acquireMedian = median(acquires);
    const acquireP95 = percentile(acquires, 95);
    const infoMedian = median(infos);
    const infoP95 = percentile(infos, 95);
    console.log(`ceso pool acquire from a full pool   median ${fmt(acquireMedian)}, p95 ${fmt(acquireP95)}`);
    console.log(`ceso vm info, warm (peer in this run) median ${fmt(infoMedian)}, p95 ${fmt(infoP95)}`);
    console.log(
      `ratio acquire / vm info: median ${ratio(acquireMedian, infoMedian)}; p95 / p95 ${ratio(acquireP95, infoP95)} (target <= 1.50x: ${verdict(acquireP95 / infoP95 <= 1.5)}); ` +
        `acquire p95 / info median ${ratio(acquireP95, infoMedian)} (stricter reading, <= 1.50x: ${verdict(acquireP95 / infoMedian <= 1.5)})`,
    );
    console.log(`ceso pool release (revert to ceso-golden, wait for the IP, ready again)  median ${fmt(median(releases))} = ${ratio(median(releases), infoMedian)} a warm vm info`);

    // 4. 20 processes started at once on a pool of ten ready VMs.
    const racers = 2 * clones;
    const raced = await Promise.all(Array.from({ length: racers }, (_, index) => runAsync(ceso(ws, sim, 'race', 'pool', 'acquire', 'bench', '--holder', `race-${index}`, '--json'))));
    const leases = raced.filter((result) => result.code === 0).map((result) => JSON.parse(result.stdout) as { leaseId: string; vm: string });
    const empty = raced.filter((result) => result.code === 4 && (JSON.parse(result.stdout) as { error?: { code?: string } }).error?.code === 'POOL_EMPTY').length;
    const other = raced.filter((result) => result.code !== 0 && !(result.code === 4 && result.stdout.includes('"POOL_EMPTY"')));
    const distinctLeases = new Set(leases.map((lease) => lease.leaseId)).size;
    const distinctVms = new Set(leases.map((lease) => lease.vm)).size;
    const status = JSON.parse(must('pool status', timeOnce(ceso(ws, sim, 'status', 'pool', 'status', 'bench', '--json'))).stdout) as { counts: { leased: number } };
    const raceOk = leases.length === clones && distinctLeases === clones && distinctVms === clones && empty === racers - clones && other.length === 0 && status.counts.leased === clones;
    console.log(
      `${racers} concurrent pool acquire on a pool of ${clones}: ${leases.length} leases (${distinctLeases} distinct lease ids, ${distinctVms} distinct VMs), ` +
        `${empty} POOL_EMPTY (exit 4), ${other.length} other outcomes; pool status: ${status.counts.leased} leased (target ${clones}/${clones}/${clones}/${racers - clones}/0: ${raceOk ? 'met' : 'FAILED'})`,
    );
    for (const failure of other.slice(0, 3)) console.log(`  other outcome (exit ${failure.code}): ${failure.stdout.slice(0, 300)}`);
    if (!raceOk) throw new Error(`pool acquire race FAILED: ${leases.length} leases, ${distinctLeases} distinct leases, ${distinctVms} distinct VMs, ${empty} POOL_EMPTY, ${other.length} other`);
  });
}

/** Issue 12: the warm pool shared by two machines through PostgreSQL (the hand-out is a SKIP LOCKED claim). */
async function poolSharedSection(): Promise<void> {
  const clones = POOL_CLONES;
  const racers = 2 * clones;
  console.log(`\n## ${racers} concurrent pool acquire from two machines (separate CESO_HOMEs) on a pool of ${clones}, state in PostgreSQL`);
  const pg = await startPostgres();
  const machineB = workspace();
  try {
    const url = await pg.createDatabase('bench');
    await withSimulator(1, async (sim, machineA) => {
      const config = simulatorConfig(sim, `state:\n  backend: postgres\n  url: \${CESO_STATE_URL}\npools:\n  shared: {size: ${clones}, max: ${clones}, linked: true, lease: 1h}\n`);
      machineA.writeConfig(config);
      machineB.writeConfig(config);
      const on = (machine: CesoWorkspace, label: string, ...args: string[]): Command => ({ ...ceso(machine, sim, label, ...args), env: { ...machine.env, SIM_PASSWORD: sim.password, CESO_STATE_URL: url } });
      const filled = timeOnce(on(machineA, 'fill', 'pool', 'fill', 'shared', '--json'));
      if (filled.code !== 0) throw new Error(`pool fill failed: ${filled.stdout.slice(0, 1000)}${filled.stderr.slice(-1000)}`);
      const started = performance.now();
      const raced = await Promise.all(Array.from({ length: racers }, (_, index) => runAsync(on(index % 2 === 0 ? machineA : machineB, 'race', 'pool', 'acquire', 'shared', '--holder', `machine-${index % 2 === 0 ? 'a' : 'b'}-${index}`, '--json'))));
      const wall = performance.now() - started;
      const leases = raced.filter((result) => result.code === 0).map((result) => JSON.parse(result.stdout) as { leaseId: string; vm: string; holder: string });
      const empty = raced.filter((result) => result.code === 4 && result.stdout.includes('"POOL_EMPTY"')).length;
      const other = raced.length - leases.length - empty;
      const distinctLeases = new Set(leases.map((lease) => lease.leaseId)).size;
      const distinctVms = new Set(leases.map((lease) => lease.vm)).size;
      const byMachine = (prefix: string): number => leases.filter((lease) => lease.holder.startsWith(prefix)).length;
      const ok = leases.length === clones && distinctLeases === clones && distinctVms === clones && empty === racers - clones && other === 0;
      console.log(
        `${leases.length} leases (${distinctLeases} distinct lease ids, ${distinctVms} distinct VMs; machine a ${byMachine('machine-a')}, machine b ${byMachine('machine-b')}), ` +
          `${empty} POOL_EMPTY, ${other} other outcomes, in ${fmt(wall)} wall (target ${clones} distinct leases: ${ok ? 'met' : 'FAILED'})`,
      );
      if (!ok) throw new Error(`shared pool race FAILED: ${leases.length} leases, ${distinctVms} distinct VMs, ${empty} POOL_EMPTY, ${other} other`);
    });
  } finally {
    machineB.cleanup();
    await pg.stop();
  }
}

console.log(`ceso benchmark on ${process.platform} ${process.arch}, node ${process.version}; each figure is a whole process, median of its rounds.`);
if (ONLY.has('list')) await listSection();
if (ONLY.has('listweight')) await listWeightSection();
if (ONLY.has('create')) await createSection();
if (ONLY.has('ssh')) await sshSection();
if (ONLY.has('import')) await importSection();
if (ONLY.has('wait')) await waitSection();
if (ONLY.has('day2')) await day2Section();
if (ONLY.has('pool')) await poolSection();
if (ONLY.has('fleet')) await fleetSection();
if (ONLY.has('metrics')) await metricsSection();
if (ONLY.has('state')) await stateSection();
if (ONLY.has('poolshared')) await poolSharedSection();
