// How an access outcome the database recorded becomes an HTTP error. Denial is decided per
// project, before the secret is looked at, so a caller without the permission gets the same 403
// whether or not the project or secret exists; a 404 only reaches callers allowed to list anyway.
import { ApiError } from "../../../shared/errors.ts";

export function forbidden(permission: "secrets:read" | "secrets:write"): ApiError {
  return new ApiError(403, "forbidden", `The caller does not have ${permission} on this project`);
}

export function secretNotFound(): ApiError {
  return new ApiError(404, "secret_not_found", "No such secret in this project");
}
