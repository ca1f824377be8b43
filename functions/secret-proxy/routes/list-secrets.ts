// GET /projects/{projectId}/secrets — names and metadata, never values; audited as a listing.
import { createRoute, z } from "@hono/zod-openapi";
import type { SecretProxyApp } from "../app.ts";
import type { SecretAccess } from "../secret-access.ts";
import { commonErrorResponses, projectParams } from "../schemas.ts";
import { forbidden } from "./access-errors.ts";

const secretMetadata = z
  .object({
    secret_id: z.uuid(),
    name: z.string(),
    description: z.string().nullable(),
    version: z.number().int(),
    created_at: z.string(),
    created_by: z.string(),
    updated_at: z.string(),
    updated_by: z.string(),
  })
  .openapi("SecretMetadata");

export const listSecretsRoute = createRoute({
  operationId: "listSecrets",
  method: "get",
  path: "/projects/{projectId}/secrets",
  summary: "List a project's secrets (metadata only)",
  request: { params: projectParams },
  responses: {
    200: { description: "The secrets", content: { "application/json": { schema: z.object({ secrets: z.array(secretMetadata) }) } } },
    ...commonErrorResponses,
  },
});

export function registerListSecrets(app: SecretProxyApp, secrets: SecretAccess): void {
  app.openapi(listSecretsRoute, async (c) => {
    const { projectId } = c.req.valid("param");
    const res = await secrets.listSecrets({ caller: c.var.caller, audit: c.var.audit, projectId });
    if (res.outcome === "denied") throw forbidden("secrets:read");
    return c.json({ secrets: res.secrets }, 200);
  });
}
