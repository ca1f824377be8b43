// The error envelope (shared/errors.ts) as an OpenAPI schema, for every function's routes.
import { z } from "@hono/zod-openapi";

export const errorEnvelope = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      details: z.array(z.object({ parameter: z.string(), message: z.string() })).optional(),
    }),
  })
  .openapi("Error");

/** A documented error response whose body is the envelope. */
export function errorResponse(description: string) {
  return { description, content: { "application/json": { schema: errorEnvelope } } };
}

/** Failures of the authentication every user-facing route shares. */
export const authErrorResponses = {
  401: errorResponse("Missing, malformed, expired or otherwise invalid bearer token"),
  503: errorResponse("Token verification temporarily unavailable"),
} as const;
