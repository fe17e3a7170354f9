import { expect } from 'vitest';
import { DriverError } from '../../src/checkpoint/driver.js';

/** The DriverError `promise` rejects with; the test fails when it resolves or rejects with anything else. */
export async function driverError(promise: Promise<unknown>): Promise<DriverError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DriverError);
  return err as DriverError;
}
