// Tests of the test bed's fake guest readiness report (guestinfo.ceso.ready, set like a guest
// running cloud-init with ceso's user data) and of its NFC import controls, through the real
// simulator binary, the oracle and the ESXi shell emulator (vim-cmd run directly). The lease
// flow itself is covered by the Go tests (test/testbed/go/src/cesotestbed/sim/nfc_test.go).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { gzipSync } from 'node:zlib';
import { dump } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TESTBED_BIN, startSimulator, type Simulator } from '../support/simulator.js';

const READY_KEY = 'guestinfo.ceso.ready';
const READY_RUNCMD = 'touch /var/lib/cloud/instance/ceso-ready && vmware-rpctool "info-set guestinfo.ceso.ready $(cat /var/lib/cloud/data/instance-id)"';
const PER_BOOT = '/var/lib/cloud/scripts/per-boot/ceso-ready';

interface OracleVm {
  id: string;
  powerState: string;
  ip: string | null;
  vmxPath: string;
  extraConfig: Record<string, string>;
}

const gzb64 = (s: string): string => gzipSync(Buffer.from(s, 'utf8')).toString('base64');

/** A MIME multipart the way ceso writes one: the user's part, then the ready part (list append). */
function multipart(...parts: string[]): string {
  const b = '==ceso-test==';
  const body = parts.map((p) => `--${b}\nContent-Type: text/cloud-config; charset="utf-8"\nMIME-Version: 1.0\nContent-Transfer-Encoding: 7bit\n\n${p}\n`).join('');
  return `Content-Type: multipart/mixed; boundary="${b}"\nMIME-Version: 1.0\n\n${body}--${b}--\n`;
}

const readyPart = `#cloud-config\n${dump(
  {
    merge_how: [
      { name: 'list', settings: ['append'] },
      { name: 'dict', settings: ['no_replace', 'recurse_list'] },
    ],
    runcmd: [READY_RUNCMD],
    write_files: [{ path: PER_BOOT, permissions: '0755', owner: 'root:root', content: '#!/bin/sh\n[ -e /var/lib/cloud/instance/ceso-ready ] || exit 0\nexit 0\n' }],
  },
  { lineWidth: -1, noRefs: true },
)}`;

function getJson<T>(sim: Simulator, p: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: sim.host, port: sim.port, path: p, method: 'GET', rejectUnauthorized: false, agent: false, timeout: 20_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        try {
          resolve(JSON.parse(text) as T);
        } catch (err) {
          reject(new Error(`GET ${p}: HTTP ${res.statusCode}: ${text} (${String(err)})`));
        }
      });
    });
    req.on('socket', (sock) => {
      sock.once('secureConnect', () => {
        if ((sock as TLSSocket).getPeerCertificate().fingerprint256 !== sim.thumbprintSha256) req.destroy(new Error('unexpected certificate'));
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

describe('test bed: guest ready report and NFC controls', () => {
  let sim: Simulator;
  let shellDir: string;
  let shellConfig: string;

  const vimCmd = (...args: string[]): Promise<{ code: number; stdout: string }> =>
    new Promise((resolve) => {
      execFile(path.join(TESTBED_BIN, 'vim-cmd'), args, { env: { ...process.env, CESO_TESTBED_CONFIG: shellConfig }, timeout: 30_000 }, (err, stdout) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout });
      });
    });

  async function readyValue(name: string, waitMs: number): Promise<string | undefined> {
    const until = Date.now() + waitMs;
    for (;;) {
      const vm = await sim.oracle<OracleVm>('vm', name);
      const v = vm.extraConfig[READY_KEY];
      if (v !== undefined || Date.now() >= until) return v;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  beforeAll(async () => {
    sim = await startSimulator({ mode: 'esx', vms: 4 });
    shellDir = await mkdtemp(path.join(os.tmpdir(), 'ceso-shell-'));
    shellConfig = path.join(shellDir, 'esxi.json');
    await writeFile(shellConfig, JSON.stringify({ url: sim.url, user: sim.user, password: sim.password, thumbprint: sim.thumbprintSha1, volumesRoot: sim.volumesRoot }), { mode: 0o600 });
  }, 60_000);

  afterAll(async () => {
    await sim?.stop();
    if (shellDir) await rm(shellDir, { recursive: true, force: true });
  });

  it('reports ready after boot only when the merged runcmd has the entry, never in the .vmx, not after power off', async () => {
    await sim.control('delay', { method: 'guest.ready', ms: 200 });
    const user = '#cloud-config\nhostname: web\nruncmd:\n  - echo user\n';
    // vm-0002 and vm-0004 are powered off
    await sim.oracle('set-extra', 'vm-0002', `guestinfo.metadata={"instance-id":"iid-ready-1"}`, `guestinfo.userdata=${gzb64(multipart(user, readyPart))}`, 'guestinfo.userdata.encoding=gzip+base64');
    // the ready part first, then a part with the default merge: its runcmd replaces the entry
    await sim.oracle('set-extra', 'vm-0004', `guestinfo.metadata={"instance-id":"iid-ready-2"}`, `guestinfo.userdata=${multipart(readyPart, user)}`);
    const web = await sim.oracle<OracleVm>('vm', 'vm-0002');
    const other = await sim.oracle<OracleVm>('vm', 'vm-0004');
    expect((await vimCmd('vmsvc/power.on', web.id)).code).toBe(0);
    expect((await vimCmd('vmsvc/power.on', other.id)).code).toBe(0);

    expect(await readyValue('vm-0002', 5_000)).toBe('iid-ready-1');
    expect((await sim.oracle<OracleVm>('vm', 'vm-0002')).ip).not.toBeNull();
    const config = await vimCmd('vmsvc/get.config', web.id);
    expect(config.stdout).toContain('key = "guestinfo.ceso.ready"');
    expect(config.stdout).toContain('"iid-ready-1"');
    const vmx = await readFile(path.join(sim.volumesRoot, web.vmxPath.replace(/^\[([^\]]+)\] /, '$1/')), 'utf8');
    expect(vmx).toContain('guestinfo.userdata');
    expect(vmx).not.toContain(READY_KEY);
    expect(await readyValue('vm-0004', 1_000)).toBeUndefined();

    const state = await getJson<{ readyDelayMs: number; guestKeys: Record<string, Record<string, string>> }>(sim, '/testbed/state');
    expect(state.readyDelayMs).toBe(200);
    expect(state.guestKeys[web.id]).toEqual({ [READY_KEY]: 'iid-ready-1' });

    expect((await vimCmd('vmsvc/power.off', web.id)).code).toBe(0);
    expect(await readyValue('vm-0002', 0)).toBeUndefined();
    // a later boot of the same instance: the per-boot script reports again
    expect((await vimCmd('vmsvc/power.on', web.id)).code).toBe(0);
    expect(await readyValue('vm-0002', 5_000)).toBe('iid-ready-1');
    await vimCmd('vmsvc/power.off', web.id);
    await vimCmd('vmsvc/power.off', other.id);
  });

  it('sets the lease timeout for new leases and reports leases', async () => {
    await sim.control('nfc', { leaseTimeoutSeconds: 2, initializingMs: 50 });
    let nfc = await getJson<{ leaseTimeoutSeconds: number; initializingMs: number; leases: unknown[] }>(sim, '/testbed/nfc');
    expect(nfc).toMatchObject({ leaseTimeoutSeconds: 2, initializingMs: 50, leases: [] });
    await expect(sim.control('nfc', { leaseTimeoutSeconds: 0 })).rejects.toThrow(/HTTP 400/);
    await sim.control('reset');
    nfc = await getJson(sim, '/testbed/nfc');
    expect(nfc).toMatchObject({ leaseTimeoutSeconds: 300, initializingMs: 200 });
  });
});
