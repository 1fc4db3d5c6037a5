import { join } from 'node:path';
import type { HostBackend } from './core/backend.js';
import type { HostTarget } from './config/resolve.js';
import { cesoHome } from './config/home.js';
import { FallbackBackend } from './core/fallback.js';
import { ApiBackend } from './esxi/api-backend.js';

export type ViaChoice = 'auto' | 'api' | 'ssh';

/** The SSH path, loaded only when used: runs that never touch SSH never load ssh2. */
async function openSsh(target: HostTarget): Promise<HostBackend> {
  const { SshBackend } = await import('./ssh/ssh-backend.js');
  return SshBackend.open(target.ssh);
}

/**
 * Opens the path that serves a command for this host: `api` or `ssh` alone, or `auto`: the API,
 * switching to SSH only when the API cannot be reached (see core/fallback.ts).
 */
export async function openBackend(target: HostTarget, via: ViaChoice = 'auto'): Promise<HostBackend> {
  if (via === 'ssh') return openSsh(target);
  const api = ApiBackend.open(target.api, join(cesoHome(), 'sessions'));
  if (via === 'api') return api;
  return new FallbackBackend(api, () => openSsh(target), {
    primary: `the API at ${target.api.host}:${target.api.port}`,
    secondary: `SSH (${target.ssh.user}@${target.ssh.host}:${target.ssh.port})`,
  });
}
