// PUT /projects/{projectId}/secrets/{name} — create a secret, or add a new version (rotation).
import { createRoute, z } from "@hono/zod-openapi";
import type { SecretProxyApp } from "../app.ts";
import type { SecretAccess } from "../secret-access.ts";
import { commonErrorResponses, secretParams, secretValue } from "../schemas.ts";
import { forbidden } from "./access-errors.ts";

const writeResult = z
  .object({ secret_id: z.uuid(), name: z.string(), version: z.number().int(), action: z.enum(["create", "update"]) })
  .openapi("SecretWriteResult");

export const writeSecretRoute = createRoute({
  operationId: "writeSecret",
  method: "put",
  path: "/projects/{projectId}/secrets/{name}",
  summary: "Create a secret or rotate it to a new version; audited",
  request: {
    params: secretParams,
    body: {
      required: true,
      content: {
        "application/json": {
          schema: z.object({ value: secretValue, description: z.string().max(1000).optional() }).strict(),
        },
      },
    },
  },
  responses: {
    201: { description: "Created (version 1)", content: { "application/json": { schema: writeResult } } },
    200: { description: "New version written", content: { "application/json": { schema: writeResult } } },
    ...commonErrorResponses,
  },
});

export function registerWriteSecret(app: SecretProxyApp, secrets: SecretAccess): void {
  app.openapi(writeSecretRoute, async (c) => {
    const { projectId, name } = c.req.valid("param");
    const { value, description } = c.req.valid("json");
    const res = await secrets.writeSecret({ caller: c.var.caller, audit: c.var.audit, projectId }, name, value, description);
    if (res.outcome === "denied" || !res.result) throw forbidden("secrets:write");
    const { action, secretId, version } = res.result;
    const body = { secret_id: secretId, name, version, action };
    return action === "create" ? c.json(body, 201) : c.json(body, 200);
  });
}
