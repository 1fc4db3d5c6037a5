// --via auto (the default): when the API cannot be reached (port closed, or a server that
// accepts and never answers) while SSH works, every vm command is served over SSH with the same
// results; an API that answers with an auth or trust failure is never bypassed.
// Needs the built CLI (npm run build).
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, workspace, type CesoWorkspace, type CliResult, sshConfig, withoutPath } from '../support/cli.js';
import { startSimulator, type Simulator } from '../support/simulator.js';
import { startSshServer, type SshServer } from '../support/sshd.js';

const SSH_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc3Zt0h6m9O6m8yq0Jc2kq9Wm6V8rB3p2wq1cQm2XyZ ceso-test';
type Json = Record<string, unknown>;



/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A loopback server that accepts connections and never says a word. */
async function silentServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('fallback from the API to SSH (--via auto)', { timeout: 180_000 }, () => {
  let sim: Simulator;
  let sshd: SshServer;
  let hanging: { port: number; close: () => Promise<void> };
  const spaces: CesoWorkspace[] = [];

  /** A workspace whose config points the API at `esxi` (host, password, thumbprint overrides). */
  function config(esxi: Record<string, unknown>): Record<string, string> {
    const ws = workspace();
    spaces.push(ws);
    ws.writeConfig(sshConfig(sim, sshd, {}, { connectTimeoutSeconds: 2, ...esxi }));
    return { ...ws.env, SIM_PASSWORD: sim.password };
  }

  const ceso = (env: Record<string, string>, ...args: string[]): Promise<CliResult> => runCli(args, { env, timeoutMs: 90_000 });
  const ok = (result: CliResult): CliResult => {
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    return result;
  };

  beforeAll(async () => {
    sim = await startSimulator({ mode: 'esx', vms: 2 });
    sshd = await startSshServer({ sim });
    hanging = await silentServer();
  }, 120_000);

  afterAll(async () => {
    await hanging?.close();
    await sshd?.stop();
    await sim?.stop();
    for (const ws of spaces) ws.cleanup();
  });

  const outages = [
    { name: 'the API port refuses connections', host: async () => `127.0.0.1:${await closedPort()}`, reason: 'connection refused' },
    { name: 'the API accepts and never answers', host: async () => `127.0.0.1:${hanging.port}`, reason: 'no TLS handshake within 2 s' },
  ];

  for (const outage of outages) {
    it(`serves list, info, create and delete over SSH when ${outage.name}`, async () => {
      const env = config({ host: await outage.host() });
      const direct = config({});

      const list = ok(await ceso(env, 'vm', 'list', '--json'));
      expect(list.stderr).toContain('switching to SSH');
      expect(list.stderr).toContain(outage.reason);
      const vms = list.json<Json[]>();
      expect(vms.every((vm) => vm.via === 'ssh')).toBe(true);
      const overApi = ok(await ceso(direct, 'vm', 'list', '--json', '--via', 'api')).json<Json[]>();
      expect(vms.map(withoutPath)).toEqual(overApi.map(withoutPath));

      const name = String(vms.find((vm) => vm.name !== sim.template)?.name);
      const info = ok(await ceso(env, 'vm', 'info', name, '--json')).json<Json>();
      expect(info.via).toBe('ssh');
      expect(withoutPath(info)).toEqual(withoutPath(ok(await ceso(direct, 'vm', 'info', name, '--json', '--via', 'api')).json<Json>()));

      const vmName = outage.reason.startsWith('connection') ? 'fb-refused' : 'fb-hang';
      const created = ok(await ceso(env, 'vm', 'create', vmName, '--ssh-key', SSH_KEY, '--no-power-on', '--json')).json<Json>();
      expect(created).toMatchObject({ name: vmName, via: 'ssh', managed: true, status: 'stopped' });
      expect(await sim.oracle('vm', vmName)).toMatchObject({ name: vmName, id: created.id });

      const deleted = ok(await ceso(env, 'vm', 'delete', vmName, '--yes', '--json')).json<Json>();
      expect(deleted).toMatchObject({ name: vmName, deleted: true, via: 'ssh' });
      expect(await sim.oracle('vm', vmName)).toBeNull();
      expect((await sim.listFiles()).filter((file) => file.startsWith(`${vmName}/`))).toEqual([]);
    });
  }

  it('uses the API while it answers, without touching SSH', async () => {
    const env = config({});
    const list = ok(await ceso(env, 'vm', 'list', '--json', '--log-level', 'debug'));
    expect(list.json<Json[]>().every((vm) => vm.via === 'api')).toBe(true);
    expect(list.stderr).not.toContain('ssh');
  });

  it('does not fall back when the API rejects the password', async () => {
    const env = config({ password: 'wrong-password' });
    const result = await ceso(env, 'vm', 'list', '--json');
    expect(result.code).toBe(6);
    expect(result.json<{ error: { code: string } }>().error.code).toBe('AUTH_FAILED');
    expect(result.stderr).not.toContain('switching to SSH');
  });

  it('does not fall back when the API certificate is not the pinned one', async () => {
    const env = config({ thumbprint: sim.thumbprintSha256.replace(/^../, sim.thumbprintSha256.startsWith('AA') ? 'BB' : 'AA') });
    const result = await ceso(env, 'vm', 'list', '--json');
    expect(result.code).toBe(5);
    expect(result.json<{ error: { code: string } }>().error.code).toBe('TLS_UNTRUSTED');
    expect(result.stderr).not.toContain('switching to SSH');
  });

  it('does not fall back after a business error (VM not found)', async () => {
    const env = config({});
    const result = await ceso(env, 'vm', 'info', 'no-such-vm', '--json');
    expect(result.code).toBe(3);
    expect(result.stderr).not.toContain('switching to SSH');
  });
});
