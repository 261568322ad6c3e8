/**
 * Every error Gantry returns carries a stable string code and an HTTP status from this one table.
 * docs/errors.md lists them; a test keeps the two in sync. A retired code is never reused.
 */
export const ERROR_CODES = {
  VALIDATION_FAILED: { status: 400, description: 'The request body, query or a parameter is invalid; `field` names it.' },
  INVALID_JSON: { status: 400, description: 'The body is not well-formed JSON.' },
  DEPENDENCY_CYCLE: { status: 400, description: 'The dependencies would make jobs wait for each other; `cycle` lists the job ids around the loop.' },
  INVALID_CURSOR: { status: 400, description: 'The pagination cursor was not issued by this server.' },
  UNAUTHORIZED: { status: 401, description: 'No bearer token, or one the server does not know.' },
  FORBIDDEN: { status: 403, description: 'The token is valid but may not do this.' },
  PRIORITY_NOT_ALLOWED: { status: 403, description: "The job's tenant may not use this priority (its tier's or its own `allowed_priorities`); `field` is `priority`." },
  NOT_FOUND: { status: 404, description: 'No such job, worker, route or resource.' },
  INVALID_TRANSITION: { status: 409, description: 'The job is in a state from which this action is not allowed.' },
  CONFLICT: { status: 409, description: 'The request conflicts with the current state (e.g. reorder across priority classes).' },
  STALE_ATTEMPT: { status: 409, description: 'A worker reported for an attempt it no longer owns (lease lost); recorded, not applied.' },
  PAYLOAD_TOO_LARGE: { status: 413, description: 'The body is over the size limit.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, description: 'The body is not application/json.' },
  NOT_LEADER: { status: 503, description: 'This server is not the scheduler leader.' },
  STORE_UNAVAILABLE: { status: 503, description: 'The database could not be reached; retry.' },
  INTERNAL: { status: 500, description: 'A bug in Gantry; the log has details.' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class GantryError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'GantryError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.details = details;
  }

  toJSON(): Record<string, unknown> {
    return { error: { code: this.code, message: this.message, ...this.details } };
  }
}

export function validationError(field: string, message: string): GantryError {
  return new GantryError('VALIDATION_FAILED', `${field}: ${message}`, { field });
}

export function notFound(what: string, id: string): GantryError {
  return new GantryError('NOT_FOUND', `${what} ${id} not found`, { id });
}
