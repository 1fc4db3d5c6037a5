// Several simulated hosts at once: one simulator per host (started in parallel), configured as
// named hosts lab1…labN of one ceso config, plus optionally a host that is down (a loopback port
// nothing listens on: the API and SSH both get "connection refused").
import { createServer } from 'node:net';
import { workspace, type CesoWorkspace } from './cli.js';
import { startSimulator, type Simulator, type SimulatorOptions } from './simulator.js';

export interface FleetWorkspace {
  sims: Simulator[];
  /** lab1…labN, in the config's order (then the down host, when asked for). */
  names: string[];
  /** The name of the host that is down, or null. */
  down: string | null;
  ws: CesoWorkspace;
  env: Record<string, string>;
  /** Rewrites the config (e.g. another fleet.parallel, or per-host esxi settings). */
  configure(options?: FleetConfigOptions): void;
  close(): Promise<void>;
}

export interface FleetConfigOptions {
  /** fleet.parallel; absent: the default. */
  parallel?: number;
  /** Extra esxi keys per host name, e.g. {lab2: {timeoutSeconds: 1}}. */
  esxi?: Record<string, Record<string, unknown>>;
  /** More top-level YAML (e.g. a pools: section). */
  extra?: string;
}

/** A loopback port that refuses connections: bound once to learn a free number, then closed. */
export async function refusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export async function openFleetWorkspace(count: number, options: { vms?: number | number[]; down?: boolean; simulator?: SimulatorOptions } = {}): Promise<FleetWorkspace> {
  const vmsOf = (index: number): number => (Array.isArray(options.vms) ? (options.vms[index] ?? 2) : (options.vms ?? 2));
  const started = await Promise.allSettled(Array.from({ length: count }, (_, index) => startSimulator({ mode: 'esx', ...options.simulator, vms: vmsOf(index) })));
  const sims = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed !== undefined) {
    await Promise.all(sims.map((sim) => sim.stop()));
    throw failed.reason;
  }
  const refused = await refusedPort();
  const names = sims.map((_, index) => `lab${index + 1}`);
  const down = options.down === true ? `lab${count + 1}` : null;
  const ws = workspace();
  const entry = (name: string, esxi: Record<string, unknown>, extra: Record<string, unknown> = {}): string =>
    `  ${name}:\n    esxi: ${JSON.stringify({ user: 'root', password: '${SIM_PASSWORD}', ...esxi, ...extra })}\n    ssh: ${JSON.stringify({ host: '127.0.0.1', port: refused })}\n`;
  const configure = (config: FleetConfigOptions = {}): void => {
    const hosts = sims.map((sim, index) => entry(names[index] as string, { host: sim.hostPort, thumbprint: sim.thumbprintSha256 }, config.esxi?.[names[index] as string]));
    if (down !== null) hosts.push(entry(down, { host: `127.0.0.1:${refused}`, connectTimeoutSeconds: 2 }, config.esxi?.[down]));
    ws.writeConfig(
      [
        'hosts:',
        ...hosts,
        `defaultHost: ${names[0]}`,
        'defaults: {template: ubuntu-22.04-template, datastore: datastore1, network: VM Network, cpu: 2, memory: 2, disk: 20}',
        ...(config.parallel === undefined ? [] : [`fleet: {parallel: ${config.parallel}}`]),
        ...(config.extra === undefined ? [] : [config.extra]),
        '',
      ].join('\n'),
    );
  };
  configure();
  return {
    sims,
    names,
    down,
    ws,
    env: { ...ws.env, SIM_PASSWORD: sims[0]?.password ?? '' },
    configure,
    async close() {
      await Promise.all(sims.map((sim) => sim.stop()));
      ws.cleanup();
    },
  };
}
