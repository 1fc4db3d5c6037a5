/**
 * Host faults -> ceso's errors, for both paths: the API path reads a fault's type from the
 * xsi:type under a SOAP fault's `detail` (or a task's `info.error.fault`), the SSH path from the
 * `(vim.fault.X)` / `(vmodl.fault.X)` that vim-cmd prints. Faults are mapped by their type, never
 * by their localized text, and the same type gives the same code and message on either path.
 */
import { CesoError, type ErrorCode } from './errors.js';

/** A fault as a host reported it, whichever path carried it. */
export interface HostFault {
  /** The fault's type without namespace: InvalidPowerState, NotFound, ... */
  type: string;
  /** The host's text (localized; shown, never matched). */
  message: string;
  /** The method (API) or what the command did (SSH), for messages and details. */
  method: string;
  /** The transport's own error, kept as the cause. */
  cause?: unknown;
}

export const FAULT_CODES: Readonly<Record<string, ErrorCode>> = {
  InvalidLogin: 'AUTH_FAILED',
  NotAuthenticated: 'AUTH_FAILED',
  NoPermission: 'NO_PERMISSION',
  NotFound: 'NOT_FOUND',
  ManagedObjectNotFound: 'NOT_FOUND',
  FileNotFound: 'NOT_FOUND',
  DuplicateName: 'VM_EXISTS',
  AlreadyExists: 'VM_EXISTS',
  FileAlreadyExists: 'CONFLICT',
  InvalidPowerState: 'INVALID_POWER_STATE',
  // A running VM's CPUs or memory changed without its hot-add flag (or removed).
  CpuHotPlugNotSupported: 'INVALID_POWER_STATE',
  MemoryHotPlugNotSupported: 'INVALID_POWER_STATE',
  InvalidState: 'CONFLICT',
  // A device change the disk's state refuses (a shrink, a grow with snapshots or a parent).
  InvalidDeviceOperation: 'CONFLICT',
  TaskInProgress: 'CONFLICT',
  ConcurrentAccess: 'CONFLICT',
  NoDiskSpace: 'INSUFFICIENT_SPACE',
  InsufficientResourcesFault: 'HOST_FAULT',
  NotSupported: 'NOT_SUPPORTED',
  InvalidArgument: 'HOST_FAULT',
  InvalidRequest: 'HOST_FAULT',
  RequestCanceled: 'INTERRUPTED',
};

const HINTS: Partial<Record<ErrorCode, string>> = {
  AUTH_FAILED: 'Check esxi.user and esxi.password (or CESO_USER / CESO_PASSWORD)',
  NO_PERMISSION: 'Use an account with the privilege named above, or ask the host administrator',
  NOT_SUPPORTED: 'A standalone ESXi host refuses some operations that vCenter offers',
};

/** The code a fault type maps to (HOST_FAULT for a type the table does not know). */
export function faultCode(type: string): ErrorCode {
  return FAULT_CODES[type] ?? 'HOST_FAULT';
}

/** Turns a host fault into ceso's typed error; the exit code follows from the code. */
export function hostFaultError(fault: HostFault, context?: string): CesoError {
  const code = faultCode(fault.type);
  const what = context === undefined ? fault.method : context;
  const message = code === 'AUTH_FAILED' && fault.type === 'InvalidLogin' ? 'the host rejected the user name or password' : `${what}: ${fault.type}: ${fault.message}`;
  const hint = HINTS[code];
  return new CesoError(code, message, {
    ...(hint === undefined ? {} : { hint }),
    details: { fault: fault.type, method: fault.method },
    ...(fault.cause === undefined ? {} : { cause: fault.cause }),
  });
}
