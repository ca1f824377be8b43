// The one JSON error envelope every function returns:
//   { "error": { "code": string, "message": string, "details"?: [{ parameter, message }] } }
// Codes are stable snake_case identifiers clients can branch on; messages are for humans.
// Messages are always authored by our code, never copied from a caught error, because a caught
// error's message may contain secret material (law 4).
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { ZodError } from "zod";

export type ApiErrorStatus =
  | 400
  | 401
  | 403
  | 404
  | 405
  | 409
  | 413
  | 415
  | 422
  | 429
  | 500
  | 503;

/** One validation problem, naming the request parameter (dotted path) it concerns. */
export interface ErrorDetail {
  parameter: string;
  message: string;
}

export interface ErrorEnvelope {
  error: {
    code: string;
    message: string;
    details?: ErrorDetail[];
  };
}

export class ApiError extends Error {
  override readonly name = "ApiError";
  readonly status: ApiErrorStatus;
  readonly code: string;
  readonly details?: ErrorDetail[];

  constructor(status: ApiErrorStatus, code: string, message: string, details?: ErrorDetail[]) {
    super(message);
    this.status = status;
    this.code = code;
    if (details !== undefined) this.details = details;
  }
}

const INTERNAL_ERROR_MESSAGE = "An internal error occurred";

export function errorResponseBody(err: ApiError): ErrorEnvelope {
  const body: ErrorEnvelope = { error: { code: err.code, message: err.message } };
  if (err.details !== undefined && err.details.length > 0) body.error.details = err.details;
  return body;
}

// Generic codes for HTTPExceptions thrown by Hono itself or its middleware (bodyLimit, validator…).
const CODE_FOR_HTTP_STATUS: Record<number, string> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  409: "conflict",
  413: "payload_too_large",
  415: "unsupported_media_type",
  422: "unprocessable_entity",
  429: "rate_limited",
  503: "service_unavailable",
};

const MAX_PASSED_THROUGH_MESSAGE = 200;

function apiErrorFromHttpException(err: HTTPException): ApiError {
  const status = err.status as number;
  if (status >= 400 && status < 500) {
    const code = CODE_FOR_HTTP_STATUS[status] ?? "bad_request";
    // Hono's own 4xx messages are fixed strings ("Malformed JSON in request body"); pass them
    // through, bounded, for clarity. 5xx messages are never passed through.
    const message = err.message ? err.message.slice(0, MAX_PASSED_THROUGH_MESSAGE) : "Request rejected";
    const clampedStatus = (status in CODE_FOR_HTTP_STATUS ? status : 400) as ApiErrorStatus;
    return new ApiError(clampedStatus, code, message);
  }
  if (status === 503) return new ApiError(503, "service_unavailable", "Service temporarily unavailable");
  return new ApiError(500, "internal_error", INTERNAL_ERROR_MESSAGE);
}

function apiErrorFromZodError(err: ZodError): ApiError {
  const details: ErrorDetail[] = err.issues.map((issue) => ({
    parameter: issue.path.map(String).join(".") || "(root)",
    // zod's built-in messages describe the expectation, not the received value.
    message: issue.message,
  }));
  return new ApiError(400, "invalid_request", "Request validation failed", details);
}

function isZodError(err: unknown): err is ZodError {
  return err instanceof ZodError;
}

/** Maps anything thrown to the ApiError that will be sent. Unknown errors become a bare 500. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof HTTPException) return apiErrorFromHttpException(err);
  if (isZodError(err)) return apiErrorFromZodError(err);
  return new ApiError(500, "internal_error", INTERNAL_ERROR_MESSAGE);
}

export function errorResponse(c: Context, err: ApiError): Response {
  const headers: Record<string, string> = { "content-type": "application/json" };
  // RFC 6750 §3: a 401 for a bearer-protected resource names the scheme.
  if (err.status === 401) headers["www-authenticate"] = "Bearer";
  return c.body(JSON.stringify(errorResponseBody(err)), err.status, headers);
}

/** Hono `app.onError` handler. */
export function handleAppError(err: unknown, c: Context): Response {
  const apiError = toApiError(err);
  if (apiError.status === 500 && !(err instanceof ApiError)) {
    // Log the error's name only: its message or stack could contain secret material or tokens.
    const name = err instanceof Error ? err.name : typeof err;
    console.error(`unhandled error: ${name}`);
  }
  return errorResponse(c, apiError);
}

/** Hono `app.notFound` handler. */
export function notFoundHandler(c: Context): Response {
  return errorResponse(c, new ApiError(404, "route_not_found", "No route matches this method and path"));
}
