// RLS on public.audit_logs: an `authenticated` caller sees exactly the rows of the projects it
// holds audit:read on, across every partition; everyone else sees nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, createSecretProxyHarness, RUNNER, STRANGER, type SecretProxyHarness } from "../support/secret-proxy-harness.ts";

const AUDITOR_B = "auditor-b";
const WRITER_B = "writer-b";

let h: SecretProxyHarness;
let projectA: string;
let projectB: string;
let idsA: string[];
let idsB: string[];

function visibleIds(claims: Record<string, unknown> | null, role = "authenticated"): Promise<string[]> {
  return h.sql.begin(async (tx) => {
    if (claims) await tx`select set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
    await tx.unsafe(`set local role ${role}`);
    const rows = await tx<{ id: string }[]>`select id::text as id from public.audit_logs order by id`;
    return rows.map((r) => r.id);
  });
}

const caller = (sub: string) => ({ claims: { sub, role: "authenticated" }, token: "unused" });
const req = (id: string) => ({ request_id: id });

beforeAll(async () => {
  h = await createSecretProxyHarness();
  projectA = h.projectId;
  projectB = h.otherProjectId;
  await h.sql`
    insert into secret_store.grants (project_id, principal, permission) values
      (${projectB}, ${AUDITOR_B}, 'audit:read'),
      (${projectB}, ${WRITER_B}, 'secrets:write'),
      (${projectB}, ${WRITER_B}, 'secrets:read')`;

  // Rows written by the real functions, on both projects.
  const seal = { p_version_id: null, p_key_id: "k1", p_nonce: "AAAAAAAAAAAAAAAA", p_ciphertext: "AAAAAAAAAAAAAAAAAAAAAA==" };
  await h.rpc.call("write_secret", { p_project_id: projectA, p_name: "A_SECRET", ...seal, p_version_id: crypto.randomUUID(), p_request: req("rls-a-1") }, caller(ADMIN));
  await h.rpc.call("read_secret", { p_project_id: projectA, p_name: "A_SECRET", p_request: req("rls-a-2") }, caller(RUNNER));
  await h.rpc.call("list_secrets", { p_project_id: projectA, p_request: req("rls-a-3") }, caller(STRANGER));
  await h.rpc.call("write_secret", { p_project_id: projectB, p_name: "B_SECRET", ...seal, p_version_id: crypto.randomUUID(), p_request: req("rls-b-1") }, caller(WRITER_B));
  await h.rpc.call("read_secrets", { p_project_id: projectB, p_names: ["B_SECRET", "NOPE"], p_request: req("rls-b-2") }, caller(WRITER_B));
  await h.rpc.call("read_secret", { p_project_id: projectB, p_name: "B_SECRET", p_request: req("rls-b-3") }, caller(ADMIN));

  // Rows stamped by the owner in this month, next month (both monthly partitions) and a month no
  // partition exists for (the default partition).
  for (const project of [projectA, projectB]) {
    await h.sql`
      insert into public.audit_logs ("timestamp", project_id, access_type, action, outcome, user_identity, actor_type, request_id)
      select ts, ${project}, 'read', 'read', 'granted', 'owner-fixture', 'system', 'rls-owner'
      from unnest(array[
        date_trunc('month', now()) + interval '2 days',
        date_trunc('month', now()) + interval '1 month 3 days',
        date_trunc('month', now()) - interval '5 years'
      ]) as ts`;
  }

  const ids = async (project: string) =>
    (await h.sql<{ id: string }[]>`select id::text as id from public.audit_logs where project_id = ${project} order by id`).map((r) => r.id);
  idsA = await ids(projectA);
  idsB = await ids(projectB);
});
afterAll(() => h?.close());

describe("row-level security on public.audit_logs", () => {
  it("the fixture spans three partitions per project and both projects have rows", async () => {
    // 4 grant rows + write + read + denied list + 3 owner rows on A; 3 grant rows + write + 2 batch + denied read + 3 owner rows on B.
    expect(idsA).toHaveLength(10);
    expect(idsB).toHaveLength(10);
    const partitions = await h.sql<{ p: string; n: number }[]>`
      select tableoid::regclass::text as p, count(*)::int as n from public.audit_logs where project_id = ${projectA} group by 1 order by 1`;
    expect(partitions).toHaveLength(3);
    expect(partitions.map((r) => r.p)).toContain("audit_partitions.audit_logs_default");
    expect(partitions.filter((r) => /audit_logs_p\d{4}_\d{2}$/.test(r.p))).toHaveLength(2);
  });

  it("(a) audit:read on project A sees exactly A's rows, from every partition", async () => {
    expect(await visibleIds({ sub: ADMIN, role: "authenticated" })).toEqual(idsA);
  });

  it("(b) audit:read on project B only sees exactly B's rows and none of A's", async () => {
    const seen = await visibleIds({ sub: AUDITOR_B, role: "authenticated" });
    expect(seen).toEqual(idsB);
    expect(seen.filter((id) => idsA.includes(id))).toEqual([]);
  });

  it("(c) secrets:read or secrets:write without audit:read sees nothing", async () => {
    expect(await visibleIds({ sub: RUNNER, role: "authenticated" })).toEqual([]);
    expect(await visibleIds({ sub: WRITER_B, role: "authenticated" })).toEqual([]);
  });

  it("(d) claims without a subject, an empty subject, or no claims at all see nothing", async () => {
    expect(await visibleIds({ role: "authenticated" })).toEqual([]);
    expect(await visibleIds({ sub: "", role: "authenticated" })).toEqual([]);
    expect(await visibleIds(null)).toEqual([]);
  });

  it("a principal with no grants at all sees nothing", async () => {
    expect(await visibleIds({ sub: STRANGER, role: "authenticated" })).toEqual([]);
  });

  it("a claim naming a role does not widen what is visible", async () => {
    expect(await visibleIds({ sub: RUNNER, role: "service_role" })).toEqual([]);
    expect(await visibleIds({ sub: AUDITOR_B, role: "service_role" })).toEqual(idsB);
  });

  it("anon and service_role cannot select at all, even with an audit:read holder's claims", async () => {
    await expect(visibleIds({ sub: ADMIN }, "anon")).rejects.toMatchObject({ code: "42501" });
    await expect(visibleIds({ sub: ADMIN }, "service_role")).rejects.toMatchObject({ code: "42501" });
  });

  it("a newly granted audit:read takes effect, and its revocation removes visibility again", async () => {
    await h.sql`insert into secret_store.grants (project_id, principal, permission) values (${projectA}, ${AUDITOR_B}, 'audit:read')`;
    const both = await visibleIds({ sub: AUDITOR_B, role: "authenticated" });
    const [{ n }] = await h.sql<{ n: number }[]>`select count(*)::int as n from public.audit_logs where project_id in (${projectA}, ${projectB})`;
    expect(both).toHaveLength(n);
    await h.sql`delete from secret_store.grants where project_id = ${projectA} and principal = ${AUDITOR_B}`;
    const afterRevoke = await visibleIds({ sub: AUDITOR_B, role: "authenticated" });
    expect(afterRevoke).toEqual(idsB);
    // The grant and the revoke were audited on project A, where B's auditor no longer looks.
    const trail = await h.sql`
      select action, outcome, user_identity, actor_type, details from public.audit_logs
      where project_id = ${projectA} and action in ('grant', 'revoke') and details ->> 'principal' = ${AUDITOR_B} order by id`;
    expect(trail).toEqual([
      { action: "grant", outcome: "granted", user_identity: expect.stringMatching(/^db:/), actor_type: "system", details: { principal: AUDITOR_B, permission: "audit:read" } },
      { action: "revoke", outcome: "granted", user_identity: expect.stringMatching(/^db:/), actor_type: "system", details: { principal: AUDITOR_B, permission: "audit:read" } },
    ]);
  });
});
