// `npm run token -- --sub runner-1 [--service] [--ttl 3600]`: prints a Supabase-shaped JWT signed
// with the local dev key (created in .local/ if missing), for the gateway on SUPABASE_URL
// (default http://127.0.0.1:54321, or 127.0.0.1:$GATEWAY_PORT).
import { parseArgs } from "node:util";
import { devIssuer, ensureDevKeys, mintDevToken } from "./lib/dev-keys.ts";
import { DEFAULT_GATEWAY_PORT } from "./lib/gateway-app.ts";

const USAGE = `usage: npm run token -- --sub <principal> [--service] [--ttl <seconds>] [--audience <aud>]
  --sub       the JWT subject: the principal grants are given to (e.g. runner-1, admin-1)
  --service   mark the caller as a service account (app_metadata.actor_type = "service")
  --ttl       lifetime in seconds (default 3600)
  --audience  the aud claim (default "authenticated")`;

function fail(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      sub: { type: "string" },
      service: { type: "boolean", default: false },
      ttl: { type: "string", default: "3600" },
      audience: { type: "string", default: "authenticated" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  }));
} catch (err) {
  fail((err as Error).message);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (!values.sub) fail("--sub is required");
if (values.sub.length > 255) fail("--sub must be at most 255 characters");
const ttl = Number(values.ttl);
if (!Number.isInteger(ttl) || ttl <= 0 || ttl > 31 * 24 * 3600) fail("--ttl must be a whole number of seconds, at most 31 days");

const supabaseUrl = process.env.SUPABASE_URL ?? `http://127.0.0.1:${process.env.GATEWAY_PORT || DEFAULT_GATEWAY_PORT}`;
const { signingKey } = ensureDevKeys();
const token = await mintDevToken({
  signingKey,
  sub: values.sub,
  actorType: values.service ? "service" : "user",
  expiresIn: ttl,
  issuer: devIssuer(supabaseUrl),
  audience: values.audience,
});
// The token alone on stdout, so `TOKEN=$(npm run -s token -- --sub runner-1)` works.
console.log(token);
