// The one table of API error codes and their HTTP statuses, and the one function that turns any
// thrown thing (ours, zod's, fastify's, tus-node-server's ERRORS.*) into
// `{"error": {"code": "SNAKE_CASE", "message": "..."}}`. Both the REST error handler and the tus
// `onResponseError` hook go through toHttpError(), so a code means the same status everywhere.
import { ERRORS as TUS_ERRORS } from '@tus/utils';

export const ERROR_STATUS = {
  // generic
  BAD_REQUEST: 400,
  VALIDATION_FAILED: 400,
  INVALID_ID: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  INTERNAL: 500,
  NOT_IMPLEMENTED: 501,
  SERVICE_UNAVAILABLE: 503,
  ANALYTICS_UNAVAILABLE: 503,
  // videos
  VIDEO_NOT_FOUND: 404,
  // uploads (REST and tus)
  UPLOAD_NOT_FOUND: 404,
  UPLOAD_GONE: 410,
  UPLOAD_FAILED: 409,
  UPLOAD_TOO_LARGE: 413,
  UPLOAD_SIZE_EXCEEDED: 413,
  EMPTY_UPLOAD: 400,
  INVALID_METADATA: 400,
  INVALID_LENGTH: 400,
  OFFSET_MISMATCH: 409,
  MISSING_OFFSET: 403,
  INVALID_CONTENT_TYPE: 403,
  TUS_VERSION_REQUIRED: 412,
  INVALID_TERMINATION: 400,
  UPLOAD_LOCKED: 423,
  UPLOAD_ABORTED: 400,
  UNSUPPORTED_EXTENSION: 501,
  // checksum extension: 460 is tus's "Checksum Mismatch"
  CHECKSUM_MISMATCH: 460,
  UNSUPPORTED_CHECKSUM_ALGORITHM: 400,
  INVALID_CHECKSUM: 400,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERROR_STATUS;

/**
 * Our error. It also carries tus-node-server's `{status_code, body}` shape, so throwing one from a tus
 * hook (onUploadCreate/onUploadFinish/store methods) answers with our status and JSON body as is.
 */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details?: unknown;
  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.details = details;
  }
  get status_code(): number {
    return this.status;
  }
  get body(): string {
    return JSON.stringify(errorBody(this.code, this.message));
  }
}

export function errorBody(code: ErrorCode, message: string) {
  return { error: { code, message } };
}

// tus-node-server's built-in errors are shared objects: map them by identity.
const TUS_CODES = new Map<unknown, ErrorCode>([
  [TUS_ERRORS.MISSING_OFFSET, 'MISSING_OFFSET'],
  [TUS_ERRORS.ABORTED, 'UPLOAD_ABORTED'],
  [TUS_ERRORS.INVALID_TERMINATION, 'INVALID_TERMINATION'],
  [TUS_ERRORS.ERR_LOCK_TIMEOUT, 'UPLOAD_LOCKED'],
  [TUS_ERRORS.INVALID_CONTENT_TYPE, 'INVALID_CONTENT_TYPE'],
  [TUS_ERRORS.FILE_NOT_FOUND, 'UPLOAD_NOT_FOUND'],
  [TUS_ERRORS.INVALID_OFFSET, 'OFFSET_MISMATCH'],
  [TUS_ERRORS.FILE_NO_LONGER_EXISTS, 'UPLOAD_GONE'],
  [TUS_ERRORS.ERR_SIZE_EXCEEDED, 'UPLOAD_SIZE_EXCEEDED'],
  [TUS_ERRORS.ERR_MAX_SIZE_EXCEEDED, 'UPLOAD_TOO_LARGE'],
  [TUS_ERRORS.INVALID_LENGTH, 'INVALID_LENGTH'],
  [TUS_ERRORS.INVALID_METADATA, 'INVALID_METADATA'],
  [TUS_ERRORS.UNKNOWN_ERROR, 'INTERNAL'],
  [TUS_ERRORS.FILE_WRITE_ERROR, 'INTERNAL'],
  [TUS_ERRORS.UNSUPPORTED_CONCATENATION_EXTENSION, 'UNSUPPORTED_EXTENSION'],
  [TUS_ERRORS.UNSUPPORTED_CREATION_DEFER_LENGTH_EXTENSION, 'UNSUPPORTED_EXTENSION'],
  [TUS_ERRORS.UNSUPPORTED_EXPIRATION_EXTENSION, 'UNSUPPORTED_EXTENSION'],
]);

/** Status code -> the code we answer with when nothing more specific is known. */
function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 400: return 'BAD_REQUEST';
    case 401: return 'UNAUTHORIZED';
    case 404: return 'NOT_FOUND';
    case 405: return 'METHOD_NOT_ALLOWED';
    case 409: return 'OFFSET_MISMATCH';
    case 410: return 'UPLOAD_GONE';
    case 412: return 'TUS_VERSION_REQUIRED';
    case 413: return 'UPLOAD_TOO_LARGE';
    case 423: return 'UPLOAD_LOCKED';
    case 460: return 'CHECKSUM_MISMATCH';
    case 501: return 'NOT_IMPLEMENTED';
    case 503: return 'SERVICE_UNAVAILABLE';
    default: return status >= 400 && status < 500 ? 'BAD_REQUEST' : 'INTERNAL';
  }
}

export interface HttpError {
  status: number;
  code: ErrorCode;
  message: string;
  /** Unexpected errors (5xx not raised on purpose) are logged with their stack. */
  unexpected: boolean;
}

export function toHttpError(err: unknown): HttpError {
  if (err instanceof ApiError) return { status: err.status, code: err.code, message: err.message, unexpected: false };
  const tusCode = TUS_CODES.get(err);
  if (tusCode) {
    const e = err as { status_code: number; body: string };
    return { status: ERROR_STATUS[tusCode], code: tusCode, message: e.body.trim(), unexpected: tusCode === 'INTERNAL' };
  }
  if (err && typeof err === 'object') {
    const e = err as { name?: string; issues?: { path: PropertyKey[]; message: string }[]; statusCode?: number; status_code?: number; body?: string; message?: string; validation?: unknown };
    if (e.name === 'ZodError' && Array.isArray(e.issues)) {
      const msg = e.issues.map((i) => `${i.path.map(String).join('.') || 'request'}: ${i.message}`).join('; ');
      return { status: 400, code: 'VALIDATION_FAILED', message: msg, unexpected: false };
    }
    // fastify's own errors (bad JSON body, 404 route, payload too large...)
    if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
      return { status: e.statusCode, code: codeForStatus(e.statusCode), message: e.message ?? 'bad request', unexpected: false };
    }
    // a tus-style {status_code, body} not in the table (e.g. thrown by a hook by hand)
    if (typeof e.status_code === 'number' && typeof e.body === 'string') {
      return { status: e.status_code, code: codeForStatus(e.status_code), message: e.body.trim(), unexpected: e.status_code >= 500 };
    }
  }
  const message = err instanceof Error ? err.message : String(err);
  return { status: 500, code: 'INTERNAL', message: message || 'internal error', unexpected: true };
}
