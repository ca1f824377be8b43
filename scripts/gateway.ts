// Local Supabase-style gateway, run under Deno (the Edge Functions' runtime):
//   deno run --allow-net --allow-env scripts/gateway.ts
// Normally started by `npm start` or startGateway() in scripts/lib/gateway-process.ts, which pass
// the environment. Routing lives in scripts/lib/gateway-app.ts; this file is the Deno glue and
// the list of functions. Deno-only: tsconfig.json excludes it; check with `deno check scripts/gateway.ts`.
import { configFromEnv, processEnv, type AppConfig } from "../shared/config.ts";
import {
  createGateway,
  gatewaySettingsFromEnv,
  type FunctionRegistry,
  type GatewaySettings,
  type PathAliases,
} from "./lib/gateway-app.ts";

/** Every function the gateway serves: adding one is one line. */
export const functionRegistry: FunctionRegistry = {
  "secret-proxy": () => import("../functions/secret-proxy/server.ts"),
  "audit-logs": () => import("../functions/audit-logs/server.ts"),
  "audit-archive": () => import("../functions/audit-archive/server.ts"),
};

/** The PRD's public paths for functions: prefix → function name. */
export const pathAliases: PathAliases = { "/api/audit-logs": "audit-logs" };

const SHUTDOWN_GRACE_MS = 5000;

function fail(message: string): never {
  console.error(`gateway: ${message}`);
  return Deno.exit(1);
}

let settings: GatewaySettings;
let config: AppConfig;
try {
  const env = processEnv();
  settings = gatewaySettingsFromEnv(env);
  config = configFromEnv(env);
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
}

const gateway = createGateway({ registry: functionRegistry, aliases: pathAliases, config, jwks: settings.jwks });

const server = Deno.serve(
  {
    hostname: settings.hostname,
    port: settings.port,
    // The line startGateway() waits for; keep its shape.
    onListen: ({ hostname, port }) => console.log(`gateway listening on http://${hostname}:${port}`),
  },
  (req, info) => gateway.fetch(req, { remoteAddress: info.remoteAddr.hostname }),
);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  const graceful = (async () => {
    await server.shutdown();
    await gateway.close();
  })();
  const timeout = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), SHUTDOWN_GRACE_MS));
  if ((await Promise.race([graceful.then(() => "done" as const), timeout])) === "timeout") {
    console.error("gateway: in-flight requests did not finish in time; exiting anyway");
  }
  Deno.exit(0);
}
Deno.addSignalListener("SIGINT", () => void stop());
Deno.addSignalListener("SIGTERM", () => void stop());

if (settings.stopOnStdinEof) {
  // The parent holds our stdin open; EOF means it is gone (even if it was SIGKILLed).
  (async () => {
    for await (const _ of Deno.stdin.readable) {
      // input is ignored
    }
    await stop();
  })();
}
