// Path, query and body schemas shared by the secret-proxy routes; also their OpenAPI description.
import { z } from "@hono/zod-openapi";
import { authErrorResponses, errorResponse } from "../../shared/openapi.ts";

export const SECRET_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

export const secretName = z
  .string()
  .regex(SECRET_NAME_PATTERN, "must start with a letter or underscore and contain only letters, digits and underscores (max 128)")
  .openapi({ example: "STRIPE_API_KEY" });

export const projectParams = z.object({
  projectId: z.uuid({ message: "must be a uuid" }).openapi({ param: { name: "projectId", in: "path" } }),
});

export const secretParams = projectParams.extend({
  name: secretName.openapi({ param: { name: "name", in: "path" } }),
});

export const MAX_SECRET_VALUE_BYTES = 32_768;

export const secretValue = z
  .string()
  .min(1, "must not be empty")
  // A lone surrogate would be silently replaced when encoded, so the value read back would differ.
  .refine((v) => v.isWellFormed(), { message: "must be well-formed Unicode" })
  .refine((v) => new TextEncoder().encode(v).length <= MAX_SECRET_VALUE_BYTES, {
    message: `must be at most ${MAX_SECRET_VALUE_BYTES} bytes (UTF-8)`,
  });

/** The failures every authenticated route can answer with. */
export const commonErrorResponses = {
  400: errorResponse("Invalid request (the error names the parameter)"),
  403: errorResponse("The caller lacks the permission on this project (also for projects that do not exist)"),
  413: errorResponse("Request body too large"),
  ...authErrorResponses,
} as const;
