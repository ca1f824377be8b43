// Deno entry for Supabase Edge Functions: serve the app built from the environment.
import { configFromEnv, processEnv } from "../../shared/config.ts";
import { createFunctionServer } from "./server.ts";

const server = await createFunctionServer(configFromEnv(processEnv()));
Deno.serve(server.fetch);
