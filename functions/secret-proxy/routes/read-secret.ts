// GET /projects/{projectId}/secrets/{name}[?version=N] — the runner's hot path.
import { createRoute, z } from "@hono/zod-openapi";
import type { SecretProxyApp } from "../app.ts";
import type { SecretAccess } from "../secret-access.ts";
import { errorResponse } from "../../../shared/openapi.ts";
import { commonErrorResponses, secretParams } from "../schemas.ts";
import { forbidden, secretNotFound } from "./access-errors.ts";

export const readSecretResponse = z
  .object({
    secret_id: z.uuid(),
    name: z.string(),
    version: z.number().int(),
    value: z.string(),
  })
  .openapi("SecretValue");

export const readSecretRoute = createRoute({
  operationId: "readSecret",
  method: "get",
  path: "/projects/{projectId}/secrets/{name}",
  summary: "Read a secret's value (current version, or ?version=N); audited",
  request: {
    params: secretParams,
    query: z.object({
      version: z.coerce.number().int("must be an integer").min(1).max(2_147_483_647).optional(),
    }),
  },
  responses: {
    200: { description: "The value", content: { "application/json": { schema: readSecretResponse } } },
    404: errorResponse("The secret (or version) does not exist"),
    ...commonErrorResponses,
  },
});

export function registerReadSecret(app: SecretProxyApp, secrets: SecretAccess): void {
  app.openapi(readSecretRoute, async (c) => {
    const { projectId, name } = c.req.valid("param");
    const { version } = c.req.valid("query");
    const res = await secrets.readSecret({ caller: c.var.caller, audit: c.var.audit, projectId }, name, version);
    if (res.outcome === "denied") throw forbidden("secrets:read");
    if (res.outcome === "not_found" || !res.secret) throw secretNotFound();
    const { secretId, version: readVersion, value } = res.secret;
    return c.json({ secret_id: secretId, name, version: readVersion, value }, 200);
  });
}
