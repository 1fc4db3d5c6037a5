import { BaseCommand } from '../../cli/base-command.js';
import { renderTable } from '../../cli/table.js';
import type { LockEntry, StateBackend } from '../../state/store.js';

export type LockListResult = { backend: StateBackend; location: string; locks: LockEntry[] };

export default class LockList extends BaseCommand<typeof LockList> {
  static override summary = 'List the locks ceso processes hold on VMs (and on idempotency keys)';
  static override description =
    'With state.backend local: the lock files in ~/.ceso/locks of this machine, each held while its process lives (stale: the process is gone, the next ceso takes it over). ' +
    'With state.backend postgres: the lock rows every machine shares, each renewed by its holder’s heartbeat until released; an expired one is taken over by the next ceso. Needs no host.';
  static override examples = ['<%= config.bin %> lock list', '<%= config.bin %> lock list --json'];

  async run(): Promise<LockListResult> {
    const store = await this.stateStore();
    const locks = await store.listLocks();
    if (locks.length === 0) {
      this.print(`No locks held (${store.backend}: ${store.location})`);
    } else {
      this.print(
        renderTable(locks, [
          { header: 'ID', value: (lock) => lock.id },
          { header: 'HOST', value: (lock) => lock.host },
          { header: 'VM', value: (lock) => lock.vm },
          { header: 'HOLDER', value: (lock) => `${lock.holder.user}@${lock.holder.machine} pid ${lock.holder.pid}` },
          { header: 'COMMAND', value: (lock) => lock.holder.command },
          { header: 'SINCE', value: (lock) => lock.since },
          { header: 'EXPIRES', value: (lock) => lock.expiresAt },
          { header: 'STATE', value: (lock) => lock.state },
        ]),
      );
    }
    return { backend: store.backend, location: store.location, locks };
  }
}
