/** An error a handler throws to answer with a status and a FastAPI-style `{"detail": ...}` body. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    options?: ErrorOptions,
  ) {
    super(detail, options);
    this.name = 'HttpError';
  }
}

export interface ValidationIssue {
  loc: (string | number)[];
  msg: string;
  type: string;
}

/** A 422 whose `detail` is a list of issues, as FastAPI answers bad input. */
export class ValidationFailed extends Error {
  constructor(readonly issues: ValidationIssue[]) {
    super('Validation failed');
    this.name = 'ValidationFailed';
  }
}

/** The entry found, or a 404 naming what was not found ("Movie not found"). */
export function found<T>(entry: T | undefined, what: string): T {
  if (entry === undefined) throw new HttpError(404, `${what} not found`);
  return entry;
}
