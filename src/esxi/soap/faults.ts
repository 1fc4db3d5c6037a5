import { CesoError, type ErrorCode } from '../../core/errors.js';
import { asObject, asString, type DecodedObject } from './xml.js';

/** A SOAP fault as the host sent it: `type` is the xsi:type under `detail`, never the localized text. */
export class SoapFault extends Error {
  constructor(
    readonly faultType: string,
    readonly faultString: string,
    readonly detail: DecodedObject,
    readonly method: string,
  ) {
    super(`${method}: ${faultType}: ${faultString}`);
    this.name = 'SoapFault';
  }
}

export function parseFault(body: DecodedObject, method: string): SoapFault {
  const faultString = asString(body.faultstring) ?? 'unknown fault';
  const detail = asObject(body.detail);
  let faultType = 'SystemError';
  let faultBody: DecodedObject = {};
  for (const [name, value] of Object.entries(detail)) {
    if (name === '_type') continue;
    faultBody = asObject(value);
    faultType = faultBody._type ?? name.replace(/Fault$/, '');
    break;
  }
  return new SoapFault(faultType, faultString, faultBody, method);
}

const FAULT_CODES: Record<string, ErrorCode> = {
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
  InvalidState: 'CONFLICT',
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

/** Turns a host fault into ceso's typed error; the exit code follows from the code. */
export function faultToError(fault: SoapFault, context?: string): CesoError {
  const code = FAULT_CODES[fault.faultType] ?? 'HOST_FAULT';
  const what = context === undefined ? fault.method : context;
  const message =
    code === 'AUTH_FAILED' && fault.faultType === 'InvalidLogin'
      ? 'the host rejected the user name or password'
      : `${what}: ${fault.faultType}: ${fault.faultString}`;
  const hint = HINTS[code];
  return new CesoError(code, message, {
    ...(hint === undefined ? {} : { hint }),
    details: { fault: fault.faultType, method: fault.method },
    cause: fault,
  });
}
