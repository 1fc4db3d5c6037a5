/**
 * The one table of errors. Every failure ceso reports carries a stable `code` from this table;
 * the exit code is derived from the code, never chosen by a command.
 */

export const EXIT = {
  OK: 0,
  UNEXPECTED: 1,
  INVALID: 2,
  NOT_FOUND: 3,
  CONFLICT: 4,
  UNREACHABLE: 5,
  AUTH: 6,
  POLICY: 7,
  HOST_FAILED: 8,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const ERROR_CODES = {
  INTERNAL: { exit: EXIT.UNEXPECTED, summary: 'An unexpected error inside ceso' },

  INVALID_INPUT: { exit: EXIT.INVALID, summary: 'A flag or argument is invalid' },
  CONFIG_INVALID: { exit: EXIT.INVALID, summary: 'The configuration file is missing, unreadable or invalid' },
  CONFIG_NOT_FOUND: { exit: EXIT.INVALID, summary: 'No configuration file and no host given' },
  HOST_NOT_CONFIGURED: { exit: EXIT.INVALID, summary: 'The named host is not in the configuration' },
  CONFIRMATION_REQUIRED: { exit: EXIT.INVALID, summary: 'A destructive command needs --yes when not on a terminal' },
  GUESTINFO_TOO_LARGE: { exit: EXIT.INVALID, summary: 'A cloud-init document exceeds the 64 KiB guestinfo limit' },

  NOT_FOUND: { exit: EXIT.NOT_FOUND, summary: 'An object does not exist on the host' },
  VM_NOT_FOUND: { exit: EXIT.NOT_FOUND, summary: 'No VM has that name or id' },
  TEMPLATE_NOT_FOUND: { exit: EXIT.NOT_FOUND, summary: 'The template VM does not exist' },
  POOL_NOT_FOUND: { exit: EXIT.NOT_FOUND, summary: 'No pool of that name is in the configuration' },
  DATASTORE_NOT_FOUND: { exit: EXIT.NOT_FOUND, summary: 'The datastore does not exist' },
  NETWORK_NOT_FOUND: { exit: EXIT.NOT_FOUND, summary: 'The network (port group) does not exist' },
  SNAPSHOT_NOT_FOUND: { exit: EXIT.NOT_FOUND, summary: 'The VM has no snapshot of that name, path or id' },
  BACKUP_NOT_FOUND: { exit: EXIT.NOT_FOUND, summary: 'No backup has that path, VM and time' },

  CONFLICT: { exit: EXIT.CONFLICT, summary: 'The host state conflicts with the request' },
  VM_EXISTS: { exit: EXIT.CONFLICT, summary: 'A VM with that name already exists' },
  AMBIGUOUS: { exit: EXIT.CONFLICT, summary: 'Several VMs share that name, or several snapshots match it' },
  INVALID_POWER_STATE: { exit: EXIT.CONFLICT, summary: 'The VM is in the wrong power state' },
  NOT_MANAGED: { exit: EXIT.CONFLICT, summary: 'The VM was not created by ceso' },
  INSUFFICIENT_SPACE: { exit: EXIT.CONFLICT, summary: 'The datastore has too little free space' },
  LOCKED: { exit: EXIT.CONFLICT, summary: 'Another ceso process holds the VM' },
  SNAPSHOT_EXISTS: { exit: EXIT.CONFLICT, summary: 'The VM already has a snapshot of that name' },
  TOOLS_NOT_RUNNING: { exit: EXIT.CONFLICT, summary: 'VMware Tools is not running in the guest' },
  HAS_DEPENDENTS: { exit: EXIT.CONFLICT, summary: 'Linked clones depend on the template or snapshot' },
  BACKUP_DAMAGED: { exit: EXIT.CONFLICT, summary: 'The backup is incomplete or damaged (manifest, configuration or disks)' },
  POOL_EMPTY: { exit: EXIT.CONFLICT, summary: 'The warm pool has no ready VM to hand out' },
  LEASE_NOT_HELD: { exit: EXIT.CONFLICT, summary: 'The pool lease is not current (released, or expired and reclaimed)' },
  IDEMPOTENCY_CONFLICT: { exit: EXIT.CONFLICT, summary: 'The idempotency key was used for a different request in the last 24 h' },
  STATE_SCHEMA_NEWER: { exit: EXIT.CONFLICT, summary: 'The state database was migrated by a newer ceso' },

  HOST_UNREACHABLE: { exit: EXIT.UNREACHABLE, summary: 'The host did not answer' },
  STATE_UNREACHABLE: { exit: EXIT.UNREACHABLE, summary: 'The state database (state.url) did not answer' },
  SOURCE_UNREACHABLE: { exit: EXIT.UNREACHABLE, summary: 'The web server of a package URL did not answer or failed' },
  TLS_UNTRUSTED: { exit: EXIT.UNREACHABLE, summary: "The host's certificate is not trusted" },
  SSH_HOST_KEY_UNTRUSTED: { exit: EXIT.UNREACHABLE, summary: "The host's SSH key is unknown or changed" },

  AUTH_FAILED: { exit: EXIT.AUTH, summary: 'The user name or password was rejected' },
  NO_PERMISSION: { exit: EXIT.AUTH, summary: 'The user lacks a privilege on the host' },

  POLICY_DENIED: { exit: EXIT.POLICY, summary: 'Restricted mode forbids the request' },

  HOST_FAULT: { exit: EXIT.HOST_FAILED, summary: 'The host reported a fault' },
  NOT_SUPPORTED: { exit: EXIT.HOST_FAILED, summary: 'The host does not support the operation' },
  TASK_FAILED: { exit: EXIT.HOST_FAILED, summary: 'A host task ended in error' },
  TIMEOUT: { exit: EXIT.HOST_FAILED, summary: 'The host did not finish in time' },
  INTERRUPTED: { exit: EXIT.HOST_FAILED, summary: 'The operation was interrupted' },
} as const satisfies Record<string, { exit: ExitCode; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface CesoErrorOptions {
  hint?: string;
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class CesoError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: CesoErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CesoError';
    this.code = code;
    if (options.hint !== undefined) this.hint = options.hint;
    if (options.details !== undefined) this.details = options.details;
  }

  get exitCode(): ExitCode {
    return ERROR_CODES[this.code].exit;
  }

  toJSON(): { code: ErrorCode; message: string; hint?: string; details?: Record<string, unknown> } {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      ...(this.details === undefined ? {} : { details: this.details }),
    };
  }
}

export function isCesoError(value: unknown): value is CesoError {
  return value instanceof CesoError;
}

export function invalidInput(message: string, hint?: string): CesoError {
  return new CesoError('INVALID_INPUT', message, hint === undefined ? {} : { hint });
}

const CONNECTION_FAILURES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'unknown host name',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  EPIPE: 'connection closed',
};

/** A socket error code (ECONNREFUSED, ...) in words, for HOST_UNREACHABLE messages; undefined when not a connection failure. */
export function connectionFailure(code: string | undefined): string | undefined {
  return code === undefined ? undefined : CONNECTION_FAILURES[code];
}
