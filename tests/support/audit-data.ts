// Random audit trails and an independent reference filter for them: the tests compare what the
// API returns with what this plain TypeScript says the filters mean.
import type { Sql } from "postgres";

/** Deterministic PRNG (mulberry32), so a failing seed can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const pick = <T>(rand: () => number, items: readonly T[]): T => items[Math.floor(rand() * items.length)];

export function subset<T>(rand: () => number, items: readonly T[], max = items.length): T[] {
  const n = 1 + Math.floor(rand() * Math.min(max, items.length));
  const copy = [...items];
  const out: T[] = [];
  while (out.length < n) out.push(copy.splice(Math.floor(rand() * copy.length), 1)[0]);
  return out;
}

export interface ReferenceRow {
  id: string;
  timestamp: string;
  project_id: string;
  secret_id: string | null;
  secret_name: string | null;
  access_type: string;
  action: string;
  outcome: string;
  user_identity: string;
  ip_address: string | null;
}

export const IDENTITIES = ["alice", "bob", "runner-7", "svc:deploy", "carol@example.com"];
export const ACTIONS = ["read", "batch_read", "list", "create", "update", "delete"];
export const OUTCOMES = ["granted", "denied", "not_found", "error"];
export const IPS = [null, "10.1.2.3", "10.200.0.9", "192.168.1.20", "203.0.113.7", "2001:db8::5", "2001:db8:1::9", "fe80::1"];
export const IP_FILTERS = ["10.0.0.0/8", "10.1.2.3", "192.168.0.0/16", "203.0.113.0/24", "2001:db8::/32", "2001:db8::5", "0.0.0.0/0", "::/0"];
export const MONTHS = ["2026-08", "2026-09", "2026-10"];

/**
 * Inserts `count` rows with random fields into the project (timestamps in MONTHS, with deliberate
 * ties so that the id tiebreak matters), across monthly partitions, and returns the secret pool.
 */
export async function seedRandomTrail(sql: Sql, projectId: string, count: number, seed: number) {
  const rand = prng(seed);
  for (const month of MONTHS) await sql`select secret_store.create_audit_partition(${`${month}-01`}::date)`;
  const secrets = Array.from({ length: 4 }, (_, i) => ({ id: crypto.randomUUID(), name: `SECRET_${i}` }));
  const tieTimestamps = ["2026-09-15T12:00:00.000000Z", "2026-10-01T00:00:00.000000Z"];
  const rows = [];
  for (let i = 0; i < count; i++) {
    const action = pick(rand, ACTIONS);
    const secret = action === "list" ? null : rand() < 0.85 ? pick(rand, secrets) : null;
    const timestamp = rand() < 0.1
      ? pick(rand, tieTimestamps)
      : new Date(Date.UTC(2026, 7, 1) + Math.floor(rand() * 91 * 86_400_000)).toISOString().replace("Z", `${Math.floor(rand() * 1000).toString().padStart(3, "0")}Z`);
    rows.push({
      timestamp,
      project_id: projectId,
      secret_id: secret?.id ?? null,
      secret_name: action === "list" ? null : secret?.name ?? `MISSING_${Math.floor(rand() * 3)}`,
      access_type: ["read", "batch_read", "list"].includes(action) ? "read" : "write",
      action,
      outcome: pick(rand, OUTCOMES),
      user_identity: pick(rand, IDENTITIES),
      actor_type: "user",
      ip_address: pick(rand, IPS),
    });
  }
  await sql`insert into public.audit_logs ${sql(rows)}`;
  return { secrets };
}

/** Every row of a project as the reference sees it (owner connection, no RLS). */
export async function referenceRows(sql: Sql, projectId: string): Promise<ReferenceRow[]> {
  return await sql<ReferenceRow[]>`
    select id::text, to_char("timestamp" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as timestamp,
           project_id::text, secret_id::text, secret_name, access_type::text, action::text, outcome::text,
           user_identity, host(ip_address) as ip_address
    from public.audit_logs where project_id = ${projectId}`;
}

export type ReferenceFilters = Partial<{
  secret_id: string[];
  secret_name: string[];
  from: string;
  to: string;
  user_identity: string;
  access_type: string[];
  action: string[];
  outcome: string[];
  ip: string[];
}>;

/** The reference meaning of the filters: AND across filters, any-of within a list, [from, to). */
export function referenceFilter(rows: ReferenceRow[], f: ReferenceFilters): ReferenceRow[] {
  return rows
    .filter((r) =>
      (!f.secret_id || (r.secret_id !== null && f.secret_id.includes(r.secret_id))) &&
      (!f.secret_name || (r.secret_name !== null && f.secret_name.includes(r.secret_name))) &&
      (!f.from || r.timestamp >= f.from) &&
      (!f.to || r.timestamp < f.to) &&
      (!f.user_identity || r.user_identity === f.user_identity) &&
      (!f.access_type || f.access_type.includes(r.access_type)) &&
      (!f.action || f.action.includes(r.action)) &&
      (!f.outcome || f.outcome.includes(r.outcome)) &&
      (!f.ip || (r.ip_address !== null && f.ip.some((range) => ipInRange(r.ip_address!, range)))))
    .sort(newestFirst);
}

export function newestFirst(a: { timestamp: string; id: string }, b: { timestamp: string; id: string }): number {
  if (a.timestamp !== b.timestamp) return a.timestamp < b.timestamp ? 1 : -1;
  return BigInt(a.id) < BigInt(b.id) ? 1 : -1;
}

function ipBits(text: string): { family: 4 | 6; value: bigint } {
  if (text.includes(".") && !text.includes(":")) {
    return { family: 4, value: text.split(".").reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n) };
  }
  const [head, tail = ""] = text.split("::");
  const headGroups = head ? head.split(":") : [];
  const tailGroups = text.includes("::") ? (tail ? tail.split(":") : []) : [];
  const groups = text.includes("::")
    ? [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill("0"), ...tailGroups]
    : headGroups;
  return { family: 6, value: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n) };
}

export function ipInRange(address: string, range: string): boolean {
  const [base, prefixText] = range.split("/");
  const a = ipBits(address);
  const b = ipBits(base);
  if (a.family !== b.family) return false;
  const width = a.family === 4 ? 32n : 128n;
  const prefix = prefixText === undefined ? width : BigInt(prefixText);
  const shift = width - prefix;
  return a.value >> shift === b.value >> shift;
}
