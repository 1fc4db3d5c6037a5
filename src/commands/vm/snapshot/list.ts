import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../cli/base-command.js';
import { listSnapshots } from '../../../core/services.js';
import { Policy } from '../../../core/policy.js';
import type { SnapshotNode, SnapshotTree } from '../../../core/snapshots.js';
import type { Via } from '../../../core/vm.js';

export type VmSnapshotListResult = SnapshotTree & { via: Via };

export default class VmSnapshotList extends BaseCommand<typeof VmSnapshotList> {
  static override summary = 'Show a VM’s snapshot tree';
  static override description =
    'Each snapshot with its id, creation time, the power state it restores, whether it holds the VM’s memory, and its description; ' +
    'the current one (what revert goes back to without a name) is marked. Other commands name a snapshot by name, by path (a/b/c) or by id.';
  static override examples = ['<%= config.bin %> vm snapshot list web1', '<%= config.bin %> vm snapshot list web1 --json'];

  static override args = {
    name: Args.string({ description: 'The VM’s exact name', required: true }),
  };

  static override flags = {
    id: Flags.string({ description: 'The VM’s managed object id, when several VMs share its name' }),
  };

  async run(): Promise<VmSnapshotListResult> {
    const selector = { name: this.args.name, ...(this.flags.id === undefined ? {} : { id: this.flags.id }) };
    const { tree, via } = await this.withBackend(async (backend) => ({
      tree: await listSnapshots({ backend, policy: new Policy(this.target().security) }, selector),
      via: backend.via,
    }));
    this.print(renderSnapshotTree(tree));
    return { ...tree, via };
  }
}

/** An indented tree, the current snapshot marked with "*" and "(current)". */
export function renderSnapshotTree(tree: SnapshotTree): string {
  if (tree.snapshots.length === 0) return `${tree.vm.name} (id ${tree.vm.id}) has no snapshots`;
  const lines = [`Snapshots of ${tree.vm.name} (id ${tree.vm.id}):`];
  const walk = (nodes: SnapshotNode[], depth: number): void => {
    for (const node of nodes) {
      const current = node.id === tree.current;
      const facts = [
        `id ${node.id}`,
        node.createdAt ?? 'time unknown',
        node.powerState === 'poweredOn' ? 'powered on' : node.powerState === 'poweredOff' ? 'powered off' : (node.powerState ?? 'state unknown'),
        node.memory ? 'memory' : 'disks only',
        ...(node.quiesced === true ? ['quiesced'] : []),
      ];
      lines.push(`${current ? '*' : ' '} ${'  '.repeat(depth)}${node.name}  [${facts.join(', ')}]${current ? '  (current)' : ''}${node.description === null ? '' : `  "${node.description}"`}`);
      walk(node.children, depth + 1);
    }
  };
  walk(tree.snapshots, 0);
  return lines.join('\n');
}
