// zod validation failures become the one error envelope, naming each offending parameter.
import type { Context } from "hono";
import type { ZodError } from "zod";
import { ApiError } from "./errors.ts";

type ValidationResult = { success: true } | { success: false; error: ZodError; target?: string };

export function validationHook(result: ValidationResult, _c: Context): void {
  if (result.success) return;
  const details = result.error.issues.map((issue) => ({
    parameter: issue.path.length > 0 ? issue.path.join(".") : (result.target ?? "request"),
    // zod quotes unknown keys back ("Unrecognized key: \"...\""): caller-supplied text of any
    // length, possibly a value sent in the wrong place. Say what is wrong without echoing it.
    message: issue.code === "unrecognized_keys" ? "Unrecognized field(s): only the documented fields are accepted" : issue.message,
  }));
  throw new ApiError(400, "invalid_request", `Invalid ${details.map((d) => d.parameter).join(", ")}`, details);
}
