import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { CesoError } from '../../core/errors.js';
import { Policy } from '../../core/policy.js';
import { resolveSecurity } from '../../config/resolve.js';
import type { LockEntry, StateBackend } from '../../state/store.js';

export type LockReleaseResult = { backend: StateBackend; released: LockEntry };

export default class LockRelease extends BaseCommand<typeof LockRelease> {
  static override summary = 'Remove a lock another ceso process left behind (needs --force)';
  static override description =
    'postgres: deletes the lock row, whoever holds it; a live holder’s next heartbeat finds it gone and warns. ' +
    'local: removes the lock file only when its holder process is dead (a live one keeps it; ceso says why). ' +
    'Refused in restricted mode. Take the ID from ceso lock list. Needs no host.';
  static override examples = ['<%= config.bin %> lock release 3f9c2a1b7d4e6f80 --force'];

  static override args = {
    id: Args.string({ description: 'The lock’s id (ceso lock list)', required: true }),
  };

  static override flags = {
    force: Flags.boolean({ description: 'Confirm the removal of a lock that is not this process’s' }),
  };

  static override audited = true;

  async run(): Promise<LockReleaseResult> {
    new Policy(resolveSecurity(this.loadedConfig().file.security, process.env)).checkFlags({ force: this.flags.force });
    if (this.flags.force !== true) {
      throw new CesoError('INVALID_INPUT', `refusing to remove the lock ${this.args.id} without --force`, {
        hint: 'A lock protects a VM another ceso process works on: check it with ceso lock list, then pass --force',
      });
    }
    const store = await this.stateStore();
    const released = await store.forceReleaseLock(this.args.id);
    this.print(`Released the lock ${released.id} on VM "${released.vm}" (${released.host}), held by ${released.holder.user}@${released.holder.machine} pid ${released.holder.pid} (${released.holder.command}) since ${released.since}`);
    return { backend: store.backend, released };
  }
}
