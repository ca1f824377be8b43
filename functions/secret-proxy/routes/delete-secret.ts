// DELETE /projects/{projectId}/secrets/{name} — destroys every version's value; the secret's
// identity and audit history remain.
import { createRoute } from "@hono/zod-openapi";
import type { SecretProxyApp } from "../app.ts";
import type { SecretAccess } from "../secret-access.ts";
import { errorResponse } from "../../../shared/openapi.ts";
import { commonErrorResponses, secretParams } from "../schemas.ts";
import { forbidden, secretNotFound } from "./access-errors.ts";

export const deleteSecretRoute = createRoute({
  operationId: "deleteSecret",
  method: "delete",
  path: "/projects/{projectId}/secrets/{name}",
  summary: "Delete a secret and destroy its values; audited",
  request: { params: secretParams },
  responses: {
    204: { description: "Deleted" },
    404: errorResponse("No such secret"),
    ...commonErrorResponses,
  },
});

export function registerDeleteSecret(app: SecretProxyApp, secrets: SecretAccess): void {
  app.openapi(deleteSecretRoute, async (c) => {
    const { projectId, name } = c.req.valid("param");
    const res = await secrets.deleteSecret({ caller: c.var.caller, audit: c.var.audit, projectId }, name);
    if (res.outcome === "denied") throw forbidden("secrets:write");
    if (res.outcome === "not_found") throw secretNotFound();
    return c.body(null, 204);
  });
}
