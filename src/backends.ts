import { join } from 'node:path';
import type { HostBackend } from './core/backend.js';
import type { HostTarget } from './config/resolve.js';
import { cesoHome } from './config/load.js';
import { ApiBackend } from './esxi/api-backend.js';

export type ViaChoice = 'auto' | 'api' | 'ssh';

/** Opens the path that serves a command for this host. */
export async function openBackend(target: HostTarget, _via: ViaChoice = 'auto'): Promise<HostBackend> {
  return ApiBackend.open(target.api, join(cesoHome(), 'sessions'));
}
