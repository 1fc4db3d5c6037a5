// A real job against VMware's simulator (standalone-ESXi mode, CloneVM_Task refused as on a real
// host): list, inspect the template, plan and create a VM with cloud-init, show it, delete it.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const root = new URL('..', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'ceso-demo-'));
const password = 'demo-Passw0rd';
const simulator = spawn(
  join(root, 'test/testbed/bin/vcsim'),
  ['--mode', 'esx', '--vms', '3', '--listen', '127.0.0.1:0', '--user', 'root', '--password', password, '--dir', join(work, 'sim')],
  { stdio: ['pipe', 'pipe', 'ignore'] },
);
const cleanup = () => {
  simulator.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
};
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

const info = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('the simulator did not start within 30 s')), 30_000);
  createInterface({ input: simulator.stdout }).once('line', (line) => {
    clearTimeout(timer);
    resolve(JSON.parse(line));
  });
  simulator.once('exit', (code) => reject(new Error(`the simulator exited (${code})`)));
});

const config = join(work, 'config.yaml');
writeFileSync(
  config,
  `esxi:\n  host: 127.0.0.1:${info.port}\n  user: root\n  password: \${DEMO_PASSWORD}\n  thumbprint: "${info.thumbprintSha256}"\n` +
    `defaults: {template: ${info.template}, datastore: datastore1, network: VM Network, cpu: 2, memory: 2, disk: 20}\n`,
  { mode: 0o600 },
);
const env = { ...process.env, CESO_CONFIG: config, CESO_HOME: join(work, 'home'), DEMO_PASSWORD: password };
const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfA2dC6WcGxPx0sN1yKq0mYkq0X8oZ5yN8dGd1cV2wL demo@ceso';

function ceso(...args) {
  console.log(`\n$ ceso ${args.join(' ')}`);
  const result = spawnSync(process.execPath, [join(root, 'bin/run.js'), ...args], { env, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`ceso exited with ${result.status}`);
    process.exit(result.status ?? 1);
  }
}

console.log(`Simulator (standalone ESXi, ${info.apiType}) at ${info.url}; certificate pinned by SHA-256 thumbprint.`);
ceso('vm', 'list');
ceso('vm', 'info', info.template);
ceso('vm', 'create', 'demo-web1', '--ip', '192.168.50.10/24', '--gateway', '192.168.50.1', '--dns', '1.1.1.1', '--domain', 'lab.example', '--ssh-key', key, '--dry-run');
ceso('vm', 'create', 'demo-web1', '--ip', '192.168.50.10/24', '--gateway', '192.168.50.1', '--dns', '1.1.1.1', '--domain', 'lab.example', '--ssh-key', key);
ceso('vm', 'list');
ceso('vm', 'delete', 'demo-web1', '--force', '--yes');
console.log('\nDemo finished: the VM was created from the template, configured by cloud-init guestinfo, and deleted.');
