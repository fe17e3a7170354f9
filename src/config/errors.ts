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

/**
 * Every problem one validation found, so an operator fixes them all in one go. The first one's field,
 * expected and received stand for the whole; the message has one line per problem.
 */
export class ConfigErrors extends ConfigError {
  constructor(readonly problems: readonly ConfigError[]) {
    if (problems.length === 0) throw new Error('ConfigErrors needs at least one problem');
    super(problems[0].field, problems[0].expected, problems[0].received);
    this.message = problems.map((problem) => problem.message).join('\n');
    this.name = 'ConfigErrors';
  }
}
