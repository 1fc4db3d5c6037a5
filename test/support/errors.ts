import { expect } from 'vitest';
import { CesoError, isCesoError } from '../../src/core/errors.js';

/** The CesoError `run` throws; anything else it throws is rethrown, and not throwing fails. */
export function errorOf(run: () => unknown): CesoError {
  try {
    run();
  } catch (error) {
    if (error instanceof CesoError) return error;
    throw error;
  }
  throw new Error('expected a CesoError, nothing was thrown');
}

/** The CesoError a promise rejects with. */
export async function rejectionOf(promise: Promise<unknown>): Promise<CesoError> {
  try {
    await promise;
  } catch (error) {
    if (isCesoError(error)) return error;
    throw error;
  }
  throw new Error('expected a CesoError, the promise resolved');
}

/** `run` fails with INVALID_INPUT and a message containing (or matching) `messagePart`. */
export function expectInvalid(run: () => unknown, messagePart: string | RegExp): CesoError {
  const error = errorOf(run);
  expect(error.code).toBe('INVALID_INPUT');
  if (typeof messagePart === 'string') expect(error.message).toContain(messagePart);
  else expect(error.message).toMatch(messagePart);
  return error;
}
