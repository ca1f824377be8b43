// Builds the secret-proxy from configuration: the one place its dependencies are chosen.
import { createJwtVerifier } from "../../shared/auth.ts";
import type { AppConfig } from "../../shared/config.ts";
import { parseKeyring } from "../../shared/crypto.ts";
import { rpcFromConfig } from "../../shared/db.ts";
import { createSecretProxyApp } from "./app.ts";
import { createSecretAccess } from "./secret-access.ts";

export async function createFunctionServer(config: AppConfig) {
  const rpc = rpcFromConfig(config);
  const keyring = await parseKeyring(config.keyring.json, config.keyring.activeKeyId);
  const app = createSecretProxyApp({
    verifyJwt: createJwtVerifier(config.auth),
    secrets: createSecretAccess(rpc, keyring),
    trustedProxyHops: config.trustedProxyHops,
    maxBodyBytes: config.maxBodyBytes,
  });
  return { fetch: (req: Request) => app.fetch(req), close: () => rpc.close() };
}
