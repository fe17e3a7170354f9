/** A configuration problem found at startup: names the field and what was expected. */
export class ConfigError extends Error {
  readonly code = 'COLO_CONFIG';
  constructor(
    readonly field: string,
    readonly expected: string,
    readonly received: unknown,
  ) {
    super(`config field "${field}": expected ${expected}, got ${JSON.stringify(received)}`);
    this.name = 'ConfigError';
  }
}
