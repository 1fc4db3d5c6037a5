import type { CesoError } from '../../core/errors.js';
import { hostFaultError } from '../../core/faults.js';
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

/** Turns a host fault into ceso's typed error, by the table both paths share (core/faults.ts). */
export function faultToError(fault: SoapFault, context?: string): CesoError {
  return hostFaultError({ type: fault.faultType, message: fault.faultString, method: fault.method, cause: fault }, context);
}
