import { Flags } from '@oclif/core';

/** Flags shared by the commands that make a VM (create, clone). */
export const guestFlags = {
  ip: Flags.string({ description: 'Static IPv4/IPv6 address with prefix, e.g. 192.168.1.100/24 (DHCP when absent)' }),
  gateway: Flags.string({ description: 'Default gateway (needs --ip; must lie in its subnet)' }),
  dns: Flags.string({ description: 'DNS server address (repeatable)', multiple: true }),
  domain: Flags.string({ description: 'DNS domain: the guest’s FQDN becomes NAME.DOMAIN' }),
  'ssh-key': Flags.string({ description: 'SSH public key for the ubuntu user: the key text, or @path to a .pub file (repeatable)', multiple: true }),
  'user-data': Flags.string({ description: 'User data: a #cloud-config file (merged over the generated one), a script (#!), #include, #cloud-boothook or a MIME multipart (sent after the generated cloud-config)' }),
};

export const resourceFlags = {
  cpu: Flags.integer({ description: 'Virtual CPUs (default: defaults.cpu, 2)' }),
  memory: Flags.string({ description: 'Memory in GB (default: defaults.memory, 4)' }),
  disk: Flags.string({ description: 'Disk size in GB (default: defaults.disk, 40, or the template’s when larger)' }),
  datastore: Flags.string({ description: 'Datastore for the new VM’s files (default: defaults.datastore, else the source’s)' }),
  network: Flags.string({ description: 'Port group for the NIC (default: defaults.network)' }),
};

export const changeFlags = {
  'dry-run': Flags.boolean({ description: 'Validate against the host and print the plan; change nothing', default: false }),
  'lock-timeout': Flags.integer({
    description: 'Seconds to wait for another ceso process working on the same VM (0: fail at once with LOCKED)',
    default: 0,
    min: 0,
  }),
};

export const provisionFlags = {
  'no-power-on': Flags.boolean({ description: 'Leave the new VM powered off' }),
  ttl: Flags.string({ description: 'Expiry recorded on the VM as ceso.expiresAt, e.g. 2h, 7d' }),
  linked: Flags.boolean({ description: 'A linked clone: the disk is a child of the source’s base snapshot (ceso-linked-base), made in seconds; it cannot grow' }),
  'add-disk': Flags.string({ description: 'Add a thin disk of this many GB, next free unit of the first disk’s controller (repeatable)', multiple: true }),
};

/** `--wait ip|ready` and its bound: create, clone, power on, vm ip (core/readiness.ts). */
export const waitFlags = {
  wait: Flags.option({
    options: ['ip', 'ready'] as const,
    description:
      'Wait until the guest reports its IPv4 address (the --ip one, when given) through VMware Tools (ip), ' +
      'or also until cloud-init has finished the user data (ready); a wait that runs out is exit 8 TIMEOUT and keeps the VM',
  })(),
  'wait-timeout': Flags.integer({ description: 'Seconds --wait waits at most', default: 600, min: 1 }),
};

/** `--idempotency-key`: a repeat of the same request returns the first result (src/state/idempotency.ts). */
export const idempotencyFlags = {
  'idempotency-key': Flags.string({
    description:
      'A name for this request, kept 24 h: a repeat with the same key and request returns the first result (replayed: true) and changes nothing, ' +
      'waits (up to --lock-timeout) while the first still runs; another request with the key is IDEMPOTENCY_CONFLICT. A failed run frees the key',
  }),
};
