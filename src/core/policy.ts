import type { SecurityConfig } from '../config/schema.js';
import type { HostBackend } from './backend.js';
import { CesoError } from './errors.js';
import type { ReconfigureRequest } from './reconfigure.js';
import { parseDuration, type CloneRequest, type CreateRequest } from './requests.js';
import type { VmSelector } from './vm.js';

/**
 * Restricted mode, for AI agents: rules that hold whatever the flags say. Each denial is
 * POLICY_DENIED (exit 7) naming the rule and the value. Standard mode checks nothing here; the
 * safety rules every mode keeps live in the operations themselves.
 */
export class Policy {
  constructor(private readonly security: SecurityConfig) {}

  get restricted(): boolean {
    return this.security.mode === 'restricted';
  }

  /** Flags restricted mode never accepts, and the confirmation it never asks for. */
  checkFlags(flags: { force?: boolean; yes?: boolean; destructive?: boolean }): void {
    if (!this.restricted) return;
    if (flags.force === true) deny('force', '--force', 'restricted mode refuses --force', 'Act only on VMs ceso manages, powered off where the command needs it');
    if (flags.destructive === true && flags.yes !== true) {
      deny('confirmation', '--yes', 'restricted mode never prompts: a destructive command needs --yes', 'Pass --yes after checking the plan with --dry-run');
    }
  }

  /** Only VMs carrying ceso.managed = "true" may be changed, powered, cloned over or deleted. */
  async checkManaged(backend: HostBackend, selector: VmSelector, action: string): Promise<void> {
    if (!this.restricted) return;
    this.checkManagedVm(await backend.getVm(selector), action);
  }

  /** The same rule, on a VM already read (a plan that reads the VM anyway checks it there). */
  checkManagedVm(vm: { name: string; managed: boolean }, action: string): void {
    if (!this.restricted) return;
    if (!vm.managed) {
      deny('managedOnly', vm.name, `restricted mode only lets ceso ${action} VMs it manages; "${vm.name}" has no ceso.managed marker`, 'Ask an operator, or act on a VM ceso created');
    }
  }

  /**
   * Warm pools: an agent may acquire from, release to and read the pools in security.pools (or
   * security.poolAdmin), and fill, reap and destroy only those in security.poolAdmin.
   */
  checkPool(pool: string, action: 'acquire' | 'release' | 'status' | 'fill' | 'reap' | 'destroy'): void {
    if (!this.restricted) return;
    const admin = this.security.poolAdmin ?? [];
    if (action === 'fill' || action === 'reap' || action === 'destroy') {
      if (!admin.includes(pool)) deny('poolAdmin', pool, `restricted mode does not let an agent ${action} pool ${pool}`, `Ask an operator, or list the pool under security.poolAdmin`);
      return;
    }
    if (!admin.includes(pool) && !(this.security.pools ?? []).includes(pool)) {
      deny('pools', pool, `restricted mode does not let an agent use pool ${pool}`, `Use one of the pools in security.pools (${(this.security.pools ?? []).join(', ') || 'none'}), or ask an operator`);
    }
  }

  /** The size limits, on the sizes a reconfigure asks for (the new CPUs, memory, each disk grown or added). */
  checkReconfigure(request: ReconfigureRequest): void {
    if (!this.restricted) return;
    const limits = this.security.limits;
    const { cpu, memoryMB } = request;
    const diskGB = [...(request.disk === undefined ? [] : [request.disk]), ...request.addDisks].map((disk) => disk.capacityKB / 1024 / 1024);
    if (limits?.cpu !== undefined && cpu !== undefined && cpu > limits.cpu) deny('limits.cpu', String(cpu), `at most ${limits.cpu} vCPUs in restricted mode`, `Pass --cpu ${limits.cpu} or less`);
    if (limits?.memoryGB !== undefined && memoryMB !== undefined && memoryMB > limits.memoryGB * 1024) {
      deny('limits.memoryGB', String(memoryMB / 1024), `at most ${limits.memoryGB} GB of memory in restricted mode`, `Pass --memory ${limits.memoryGB} or less`);
    }
    for (const size of diskGB) {
      if (limits?.diskGB !== undefined && size > limits.diskGB) deny('limits.diskGB', String(size), `at most ${limits.diskGB} GB of disk in restricted mode`, `Pass --disk / --add-disk ${limits.diskGB} or less`);
    }
  }

  /**
   * A restore: only backups of managed VMs; in place only with security.allowRestoreInPlace (and
   * --yes, checked with the flags) and onto a managed VM; a new VM follows the rules of a new VM
   * (name prefix, sizes of the backed-up VM, managed VMs on the host, user data, TTL).
   */
  async checkRestore(
    backend: HostBackend,
    restore: { inPlace: boolean; newVm?: { name: string; expiresAt?: string; guest: { userData?: string } } },
    backup: { vm: { name: string; managed: boolean }; config: { cpu: number | null; memoryMB: number | null }; disks: ReadonlyArray<{ capacityBytes: number }> },
    target: { name: string; managed: boolean } | null,
    now = new Date(),
  ): Promise<void> {
    if (!this.restricted) return;
    if (restore.inPlace && this.security.allowRestoreInPlace !== true) {
      deny('allowRestoreInPlace', '--in-place', 'restricted mode refuses vm restore --in-place unless security.allowRestoreInPlace is true', 'Restore as a new VM with --name instead');
    }
    if (!backup.vm.managed) {
      deny('managedOnly', backup.vm.name, `restricted mode only restores backups of VMs ceso manages; "${backup.vm.name}" had no ceso.managed marker`, 'Ask an operator to restore it');
    }
    if (restore.inPlace) {
      if (target !== null) this.checkManagedVm(target, 'restore in place');
      return;
    }
    const request = restore.newVm;
    if (request === undefined) return;
    const { namePrefix, limits, allowUserData, requireTTL, maxTTL } = this.security;
    if (namePrefix !== undefined && !request.name.startsWith(namePrefix)) {
      deny('namePrefix', request.name, `restricted mode requires names starting with "${namePrefix}"`, `Name the VM ${namePrefix}${request.name}`);
    }
    if (request.guest.userData !== undefined && !allowUserData) {
      deny('allowUserData', '--user-data', 'restricted mode refuses --user-data unless security.allowUserData is true', 'Use --ssh-key and the generated cloud-config');
    }
    if (requireTTL && request.expiresAt === undefined) deny('requireTTL', '--ttl', 'restricted mode requires an expiry: pass --ttl', 'e.g. --ttl 2h');
    if (maxTTL !== undefined && request.expiresAt !== undefined && new Date(request.expiresAt).getTime() - now.getTime() > parseDuration(maxTTL, 'security.maxTTL') + 1000) {
      deny('maxTTL', request.expiresAt, `restricted mode allows a TTL of at most ${maxTTL}`, `Pass --ttl ${maxTTL} or less`);
    }
    const cpu = backup.config.cpu ?? 0;
    const memoryMB = backup.config.memoryMB ?? 0;
    const diskGB = backup.disks.reduce((largest, disk) => Math.max(largest, disk.capacityBytes / 1024 ** 3), 0);
    if (limits?.cpu !== undefined && cpu > limits.cpu) deny('limits.cpu', String(cpu), `at most ${limits.cpu} vCPUs in restricted mode (the backed-up VM had ${cpu})`, 'Restore a smaller VM');
    if (limits?.memoryGB !== undefined && memoryMB > limits.memoryGB * 1024) deny('limits.memoryGB', String(memoryMB / 1024), `at most ${limits.memoryGB} GB of memory in restricted mode`, 'Restore a smaller VM');
    if (limits?.diskGB !== undefined && diskGB > limits.diskGB) deny('limits.diskGB', String(Math.round(diskGB * 10) / 10), `at most ${limits.diskGB} GB of disk in restricted mode`, 'Restore a smaller VM');
    if (limits?.vms !== undefined) {
      const managed = (await backend.listVms()).filter((vm) => vm.managed).length;
      if (managed >= limits.vms) {
        deny('limits.vms', String(managed + 1), `restricted mode allows at most ${limits.vms} managed VMs on this host (${managed} exist)`, 'Delete a managed VM first (ceso vm reap removes expired ones)');
      }
    }
  }

  /**
   * Importing a template makes a VM that is not managed (agents could neither use it without an
   * operator's allowedTemplates nor delete it): restricted mode leaves imports to operators.
   */
  checkImport(): void {
    if (!this.restricted) return;
    deny('templateImport', 'template import', 'restricted mode does not import templates', 'Ask an operator to import the template (standard mode), then use it with vm create --template');
  }

  /** Name prefix, allowed templates, size limits, user data and TTL for a new VM. */
  async checkProvision(backend: HostBackend, request: CreateRequest | CloneRequest, now = new Date()): Promise<void> {
    if (!this.restricted) return;
    const { namePrefix, allowedTemplates, limits, allowUserData, requireTTL, maxTTL } = this.security;
    if (namePrefix !== undefined && !request.name.startsWith(namePrefix)) {
      deny('namePrefix', request.name, `restricted mode requires names starting with "${namePrefix}"`, `Name the VM ${namePrefix}${request.name}`);
    }
    if ('template' in request && allowedTemplates !== undefined && !allowedTemplates.includes(request.template)) {
      deny('allowedTemplates', request.template, `template "${request.template}" is not allowed in restricted mode`, `Use one of: ${allowedTemplates.join(', ')}`);
    }
    if (request.guest.userData !== undefined && !allowUserData) {
      deny('allowUserData', '--user-data', 'restricted mode refuses --user-data unless security.allowUserData is true', 'Use --ssh-key and the generated cloud-config');
    }
    if (requireTTL && request.expiresAt === undefined) deny('requireTTL', '--ttl', 'restricted mode requires an expiry: pass --ttl', 'e.g. --ttl 2h');
    if (maxTTL !== undefined && request.expiresAt !== undefined) {
      const longest = parseDuration(maxTTL, 'security.maxTTL');
      if (new Date(request.expiresAt).getTime() - now.getTime() > longest + 1000) {
        deny('maxTTL', request.expiresAt, `restricted mode allows a TTL of at most ${maxTTL}`, `Pass --ttl ${maxTTL} or less`);
      }
    }
    let { cpu, memoryMB, diskGB } = request;
    if ('source' in request) {
      const source = await backend.getVm(request.source);
      if (!source.managed) {
        deny('managedOnly', source.name, `restricted mode only lets ceso clone VMs it manages; "${source.name}" has no ceso.managed marker`, 'Clone a VM ceso created');
      }
      cpu ??= source.cpu ?? undefined;
      memoryMB ??= source.memoryMB ?? undefined;
      diskGB ??= source.disks.reduce((largest, disk) => Math.max(largest, disk.capacityGB ?? 0), 0);
    }
    if (limits?.cpu !== undefined && (cpu ?? 0) > limits.cpu) deny('limits.cpu', String(cpu), `at most ${limits.cpu} vCPUs in restricted mode`, `Pass --cpu ${limits.cpu} or less`);
    if (limits?.memoryGB !== undefined && (memoryMB ?? 0) > limits.memoryGB * 1024) {
      deny('limits.memoryGB', String((memoryMB ?? 0) / 1024), `at most ${limits.memoryGB} GB of memory in restricted mode`, `Pass --memory ${limits.memoryGB} or less`);
    }
    if (limits?.diskGB !== undefined && (diskGB ?? 0) > limits.diskGB) deny('limits.diskGB', String(diskGB), `at most ${limits.diskGB} GB of disk in restricted mode`, `Pass --disk ${limits.diskGB} or less`);
    if (limits?.vms !== undefined) {
      const managed = (await backend.listVms()).filter((vm) => vm.managed).length;
      if (managed >= limits.vms) {
        deny('limits.vms', String(managed + 1), `restricted mode allows at most ${limits.vms} managed VMs on this host (${managed} exist)`, 'Delete a managed VM first (ceso vm reap removes expired ones)');
      }
    }
  }
}

function deny(rule: string, value: string, message: string, hint: string): never {
  throw new CesoError('POLICY_DENIED', `${message} (rule ${rule}, value ${JSON.stringify(value)})`, { hint, details: { rule, value } });
}
