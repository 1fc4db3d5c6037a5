// A real job against VMware's simulator in standalone-ESXi mode (CloneVM_Task refused as on a real
// host): list, inspect the template, plan and create a VM with cloud-init, show it, delete it.
import { spawnSync } from 'node:child_process';
import { CLI, simulatorConfig, workspace } from '../test/support/cli.js';
import { startSimulator } from '../test/support/simulator.js';

const sim = await startSimulator({ mode: 'esx', vms: 3 });
const ws = workspace();
const finish = async (code: number): Promise<never> => {
  await sim.stop();
  ws.cleanup();
  process.exit(code);
};
process.on('SIGINT', () => void finish(130));
ws.writeConfig(simulatorConfig(sim));
const env = { ...process.env, ...ws.env, SIM_PASSWORD: sim.password };
const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfA2dC6WcGxPx0sN1yKq0mYkq0X8oZ5yN8dGd1cV2wL demo@ceso';

async function ceso(...args: string[]): Promise<void> {
  console.log(`\n$ ceso ${args.join(' ')}`);
  const result = spawnSync(process.execPath, [CLI, ...args], { env, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`ceso exited with ${result.status}`);
    await finish(result.status ?? 1);
  }
}

console.log(`Simulator (standalone ESXi, ${sim.apiType}) at ${sim.url}; its certificate is pinned by SHA-256 thumbprint in ${ws.configPath}.`);
const guest = ['--ip', '192.168.50.10/24', '--gateway', '192.168.50.1', '--dns', '1.1.1.1', '--domain', 'lab.example', '--ssh-key', key];
await ceso('vm', 'list');
await ceso('vm', 'info', sim.template ?? 'ubuntu-22.04-template');
await ceso('vm', 'create', 'demo-web1', ...guest, '--dry-run');
await ceso('vm', 'create', 'demo-web1', ...guest);
await ceso('vm', 'list');
await ceso('vm', 'delete', 'demo-web1', '--force', '--yes');
console.log('\nDemo finished: a VM was created from the template, configured by cloud-init guestinfo, listed, and deleted.');
await finish(0);
