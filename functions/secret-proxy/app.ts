// secret-proxy: the hot path. Every route authenticates the caller, makes one audited database
// call and shapes the HTTP answer. The app is a value built from its dependencies, so tests call
// it with app.request() and the Deno entry serves it.
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { type CallerVariables, type JwtVerifier, requireCaller } from "../../shared/auth.ts";
import { ApiError, handleAppError, notFoundHandler } from "../../shared/errors.ts";
import { requestContext, type RequestContextVariables } from "../../shared/request-context.ts";
import { validationHook } from "../../shared/validation.ts";
import type { SecretAccess } from "./secret-access.ts";
import { registerReadSecret } from "./routes/read-secret.ts";
import { registerBatchReadSecrets } from "./routes/batch-read-secrets.ts";
import { registerListSecrets } from "./routes/list-secrets.ts";
import { registerWriteSecret } from "./routes/write-secret.ts";
import { registerDeleteSecret } from "./routes/delete-secret.ts";

export const FUNCTION_NAME = "secret-proxy";

export type SecretProxyEnv = { Variables: CallerVariables & RequestContextVariables };
export type SecretProxyApp = OpenAPIHono<SecretProxyEnv>;

export interface SecretProxyDeps {
  verifyJwt: JwtVerifier;
  secrets: SecretAccess;
  trustedProxyHops: number;
  maxBodyBytes: number;
}

export function createSecretProxyApp(deps: SecretProxyDeps): SecretProxyApp {
  const app = new OpenAPIHono<SecretProxyEnv>({ defaultHook: validationHook }).basePath(`/${FUNCTION_NAME}`);
  app.onError(handleAppError);
  app.notFound(notFoundHandler);

  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: { title: "secret-proxy", version: "1.0.0", description: "Audited secret access for workflow runners" },
  });

  app.use("/projects/*", requestContext(deps.trustedProxyHops));
  app.use(
    "/projects/*",
    bodyLimit({
      maxSize: deps.maxBodyBytes,
      onError: () => {
        throw new ApiError(413, "payload_too_large", `Request body exceeds ${deps.maxBodyBytes} bytes`);
      },
    }),
  );
  app.use("/projects/*", requireCaller(deps.verifyJwt));

  registerListSecrets(app, deps.secrets);
  registerBatchReadSecrets(app, deps.secrets);
  registerReadSecret(app, deps.secrets);
  registerWriteSecret(app, deps.secrets);
  registerDeleteSecret(app, deps.secrets);
  return app;
}
