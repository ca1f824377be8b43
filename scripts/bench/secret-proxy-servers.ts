// Deno: serves the secret-proxy twice for the benchmark, on two ports, from one codebase. The
// only difference is the schema its SQL functions are called in: `public` (audited) or `bench`
// (the benchmark's copy of the same functions with the audit insert removed).
// Usage: deno run --allow-net --allow-env scripts/bench/secret-proxy-servers.ts <audited-port> <baseline-port>
import { createJwtVerifier } from "../../shared/auth.ts";
import { configFromEnv, processEnv } from "../../shared/config.ts";
import { parseKeyring } from "../../shared/crypto.ts";
import { createPostgresRpc } from "../../shared/db.ts";
import { createSecretProxyApp } from "../../functions/secret-proxy/app.ts";
import { createSecretAccess } from "../../functions/secret-proxy/secret-access.ts";

const config = configFromEnv(processEnv());
const keyring = await parseKeyring(config.keyring.json, config.keyring.activeKeyId);
const verifyJwt = createJwtVerifier(config.auth);
const [auditedPort, baselinePort] = Deno.args.map(Number);

for (const [port, schema] of [[auditedPort, "public"], [baselinePort, "bench"]] as const) {
  const app = createSecretProxyApp({
    verifyJwt,
    secrets: createSecretAccess(createPostgresRpc(config.dbUrl!, { poolMax: config.dbPoolMax, schema }), keyring),
    trustedProxyHops: config.trustedProxyHops,
    maxBodyBytes: config.maxBodyBytes,
  });
  Deno.serve({ port, hostname: "127.0.0.1", onListen: () => console.log(`listening ${schema} ${port}`) }, app.fetch);
}
