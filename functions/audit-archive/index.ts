// Deno entry for Supabase Edge Functions: serve the app built from the environment.
// Deploy with JWT verification off (the caller's bearer is the archive key, not a JWT):
//   supabase functions deploy audit-archive --no-verify-jwt
import { configFromEnv, processEnv } from "../../shared/config.ts";
import { createFunctionServer } from "./server.ts";

const server = await createFunctionServer(configFromEnv(processEnv()));
Deno.serve(server.fetch);
