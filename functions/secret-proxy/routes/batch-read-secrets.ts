// POST /projects/{projectId}/secrets/batch-read — several values in one round trip, one audit
// row per requested name, all in one transaction. ("batch-read" can never be a secret name.)
import { createRoute, z } from "@hono/zod-openapi";
import type { SecretProxyApp } from "../app.ts";
import type { SecretAccess } from "../secret-access.ts";
import { commonErrorResponses, projectParams, secretName } from "../schemas.ts";
import { readSecretResponse } from "./read-secret.ts";
import { forbidden } from "./access-errors.ts";

export const MAX_BATCH_NAMES = 100;

export const batchReadRoute = createRoute({
  operationId: "batchReadSecrets",
  method: "post",
  path: "/projects/{projectId}/secrets/batch-read",
  summary: "Read several secrets at once; names that do not exist are listed in `missing`",
  request: {
    params: projectParams,
    body: {
      required: true,
      content: {
        "application/json": {
          schema: z.object({ names: z.array(secretName).min(1).max(MAX_BATCH_NAMES) }).strict(),
        },
      },
    },
  },
  responses: {
    200: {
      description: "Values found, and names not found",
      content: {
        "application/json": {
          schema: z.object({ secrets: z.array(readSecretResponse), missing: z.array(z.string()) }),
        },
      },
    },
    ...commonErrorResponses,
  },
});

export function registerBatchReadSecrets(app: SecretProxyApp, secrets: SecretAccess): void {
  app.openapi(batchReadRoute, async (c) => {
    const { projectId } = c.req.valid("param");
    const { names } = c.req.valid("json");
    const res = await secrets.readSecrets({ caller: c.var.caller, audit: c.var.audit, projectId }, names);
    if (res.outcome === "denied") throw forbidden("secrets:read");
    return c.json({
      secrets: res.secrets.map((s) => ({ secret_id: s.secretId, name: s.name, version: s.version, value: s.value })),
      missing: res.missing,
    }, 200);
  });
}
