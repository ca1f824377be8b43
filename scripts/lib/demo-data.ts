// The local demo: supabase/seed.sql (project + grants) and a few secrets created through the
// running secret-proxy, because values are sealed by the function with the keyring.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Sql } from "postgres";
import { REPO_ROOT } from "./dev-keys.ts";

export const SEED_FILE = join(REPO_ROOT, "supabase", "seed.sql");
export const DEMO_PROJECT_ID = "00000000-0000-4000-8000-000000000001";
export const DEMO_RUNNER = "runner-1";
export const DEMO_ADMIN = "admin-1";

/** Obviously fake values: nothing here is a real credential. */
export const DEMO_SECRETS: { name: string; value: string; description: string }[] = [
  { name: "STRIPE_API_KEY", value: "sk_test_DEMO_not_a_real_key_0000000000", description: "Demo: payment provider API key" },
  { name: "DATABASE_PASSWORD", value: "demo-password-change-me", description: "Demo: workflow database password" },
  {
    name: "SLACK_WEBHOOK_URL",
    value: "https://hooks.slack.example/services/T000DEMO/B000DEMO/not-a-real-webhook",
    description: "Demo: notification webhook",
  },
];

export async function applySeed(sql: Sql): Promise<void> {
  await sql.unsafe(readFileSync(SEED_FILE, "utf8"));
}

/**
 * Creates the demo secrets that do not exist yet, as the admin, through the secret-proxy.
 * Returns the names it created. Existing secrets are left alone (their values may have been
 * rotated by hand).
 */
export async function seedDemoSecrets(opts: { gatewayUrl: string; adminToken: string }): Promise<string[]> {
  const base = `${opts.gatewayUrl}/functions/v1/secret-proxy/projects/${DEMO_PROJECT_ID}/secrets`;
  const headers = { authorization: `Bearer ${opts.adminToken}`, "content-type": "application/json" };
  const listing = await fetch(base, { headers });
  if (!listing.ok) throw new Error(`listing the demo secrets failed: ${await describe(listing)}`);
  const existing = new Set(((await listing.json()) as { secrets: { name: string }[] }).secrets.map((s) => s.name));
  const created: string[] = [];
  for (const secret of DEMO_SECRETS) {
    if (existing.has(secret.name)) continue;
    const res = await fetch(`${base}/${secret.name}`, {
      method: "PUT",
      headers,
      body: JSON.stringify({ value: secret.value, description: secret.description }),
    });
    if (!res.ok) throw new Error(`creating demo secret ${secret.name} failed: ${await describe(res)}`);
    await res.body?.cancel();
    created.push(secret.name);
  }
  return created;
}

// The error envelope's code and message are authored by the function and carry no values.
async function describe(res: Response): Promise<string> {
  const text = await res.text();
  try {
    const { error } = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (error?.code) return `${res.status} ${error.code}: ${error.message ?? ""}`;
  } catch {
    // not the envelope
  }
  return `${res.status}`;
}
