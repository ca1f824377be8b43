// Law 3: audit rows are append-only. Privileges keep every API role out (no UPDATE, DELETE,
// TRUNCATE or forged INSERT, on the parent or on a partition); triggers stop even the owner.
// The tables holding secrets and grants are unreachable from the API roles altogether.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, createSecretProxyHarness, RUNNER, type SecretProxyHarness } from "../support/secret-proxy-harness.ts";

type Role = "anon" | "authenticated" | "service_role";
const API_ROLES: Role[] = ["anon", "authenticated", "service_role"];

let h: SecretProxyHarness;
let monthPartition: string;
let rowsBefore: number;
let fingerprintBefore: string;

/** Runs one statement as `role` with the claims of an audit:read holder (the admin). */
function asRole(role: Role, statement: string, claims: Record<string, unknown> = { sub: ADMIN, role }) {
  return h.sql.begin(async (tx) => {
    await tx`select set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
    await tx.unsafe(`set local role ${role}`);
    return await tx.unsafe(statement);
  });
}

async function fingerprint(maxId?: string): Promise<{ count: number; md5: string }> {
  const [row] = await h.sql<{ count: number; md5: string }[]>`
    select count(*)::int as count, md5(coalesce(string_agg(t::text, E'\n' order by id), '')) as md5
    from public.audit_logs t
    where ${maxId ?? null}::bigint is null or id <= ${maxId ?? null}::bigint`;
  return row;
}

beforeAll(async () => {
  h = await createSecretProxyHarness();
  expect((await h.request("PUT", `/projects/${h.projectId}/secrets/DB_PASSWORD`, { body: { value: "append-only-pw-1" } })).status).toBe(201);
  expect((await h.request("GET", `/projects/${h.projectId}/secrets/DB_PASSWORD`, { token: h.tokens.runner })).status).toBe(200);
  expect((await h.request("GET", `/projects/${h.projectId}/secrets/DB_PASSWORD`, { token: h.tokens.stranger })).status).toBe(403);
  const [{ partition }] = await h.sql<{ partition: string }[]>`
    select tableoid::regclass::text as partition from public.audit_logs where secret_name = 'DB_PASSWORD' limit 1`;
  monthPartition = partition;
  ({ count: rowsBefore, md5: fingerprintBefore } = await fingerprint());
});
afterAll(() => h?.close());

describe("audit rows as seen from the API roles", () => {
  it("the rows under test live in a monthly partition in audit_partitions, and there are 4 grant + 3 access rows", () => {
    expect(monthPartition).toMatch(/^audit_partitions\.audit_logs_p\d{4}_\d{2}$/);
    expect(rowsBefore).toBe(7);
  });

  describe.each(API_ROLES)("as %s", (role) => {
    it.each([
      ["UPDATE on audit_logs", `update public.audit_logs set outcome = 'granted', user_identity = 'nobody'`],
      ["UPDATE of one row on audit_logs", `update public.audit_logs set secret_name = 'X' where id = (select min(id) from public.audit_logs)`],
      ["DELETE on audit_logs", `delete from public.audit_logs`],
      ["TRUNCATE on audit_logs", `truncate public.audit_logs`],
      ["forged INSERT into audit_logs", `insert into public.audit_logs (project_id, access_type, action, outcome, user_identity, actor_type)
         values (gen_random_uuid(), 'read', 'read', 'granted', 'forged', 'user')`],
      ["INSERT with an explicit id and timestamp", `insert into public.audit_logs (id, "timestamp", project_id, access_type, action, outcome, user_identity, actor_type)
         values (1, now() - interval '1 year', gen_random_uuid(), 'read', 'read', 'granted', 'forged', 'user')`],
      ["nextval on the id sequence", `select nextval('public.audit_logs_id_seq')`],
      ["DELETE with the partition-upkeep flag set", `select set_config('secret_store.partition_upkeep', 'on', true); delete from public.audit_logs`],
    ])("%s is refused with a privilege error", async (_label, statement) => {
      await expect(asRole(role, statement)).rejects.toMatchObject({ code: "42501" });
    });

    it("UPDATE, DELETE, TRUNCATE, INSERT and SELECT on a partition are refused", async () => {
      for (const statement of [
        `update ${monthPartition} set user_identity = 'nobody'`,
        `delete from ${monthPartition}`,
        `truncate ${monthPartition}`,
        `insert into ${monthPartition} select * from ${monthPartition}`,
        `select count(*) from ${monthPartition}`,
        `delete from audit_partitions.audit_logs_default`,
        `truncate audit_partitions.audit_logs_default`,
      ]) {
        await expect(asRole(role, statement), statement).rejects.toMatchObject({ code: "42501" });
      }
    });
  });

  it("authenticated with audit:read can read the rows (the refusals above are not for want of visibility)", async () => {
    const rows = await asRole("authenticated", `select count(*)::int as n from public.audit_logs where project_id = '${h.projectId}'`);
    expect(rows[0].n).toBe(7);
  });
});

describe("the owner (superuser) is stopped by the append-only triggers", () => {
  it.each([
    ["UPDATE", "update public.audit_logs set user_identity = 'rewritten'", "UPDATE"],
    ["DELETE", "delete from public.audit_logs", "DELETE"],
    ["TRUNCATE", "truncate public.audit_logs", "TRUNCATE"],
  ])("%s on audit_logs", async (_label, statement, op) => {
    await expect(h.sql.unsafe(statement)).rejects.toMatchObject({
      code: "42501",
      message: `audit_logs is append-only: ${op} is not allowed`,
    });
  });

  it("UPDATE, DELETE and TRUNCATE directly on the partition", async () => {
    for (const [statement, op] of [
      [`update ${monthPartition} set user_identity = 'rewritten'`, "UPDATE"],
      [`delete from ${monthPartition}`, "DELETE"],
      [`truncate ${monthPartition}`, "TRUNCATE"],
      [`truncate audit_partitions.audit_logs_default`, "TRUNCATE"],
    ]) {
      await expect(h.sql.unsafe(statement), statement).rejects.toMatchObject({
        code: "42501",
        message: `audit_logs is append-only: ${op} is not allowed`,
      });
    }
  });

  it("the upkeep flag does not allow UPDATE", async () => {
    await expect(
      h.sql.begin(async (tx) => {
        await tx`select set_config('secret_store.partition_upkeep', 'on', true)`;
        await tx`update public.audit_logs set user_identity = 'rewritten'`;
      }),
    ).rejects.toMatchObject({ code: "42501" });
  });
});

describe("direct callers of the public functions (as authenticated) only ever append", () => {
  it("every function call adds exactly its own row and leaves earlier rows byte-for-byte unchanged", async () => {
    const before = await fingerprint();
    const maxBefore = await h.lastAuditId();
    const admin = { claims: { sub: ADMIN, role: "authenticated" }, token: "unused" };
    const runner = { claims: { sub: RUNNER, role: "authenticated", app_metadata: { actor_type: "service" } }, token: "unused" };
    const req = (id: string) => ({ request_id: id, ip: null, forwarded_for: null, user_agent: null });
    const p = h.projectId;
    await h.rpc.call("list_secrets", { p_project_id: p, p_request: req("direct-1") }, runner);
    await h.rpc.call("read_secret", { p_project_id: p, p_name: "DB_PASSWORD", p_request: req("direct-2") }, runner);
    await h.rpc.call("read_secrets", { p_project_id: p, p_names: ["DB_PASSWORD", "NOPE"], p_request: req("direct-3") }, runner);
    await h.rpc.call("delete_secret", { p_project_id: p, p_name: "NOPE", p_request: req("direct-4") }, admin);
    await h.rpc.call("delete_secret", { p_project_id: p, p_name: "DB_PASSWORD", p_request: req("direct-5") }, runner);
    const after = await fingerprint(maxBefore);
    expect(after).toEqual(before);
    const added = await h.auditRowsAfter(maxBefore);
    expect(added.map((r) => [r.request_id, r.action, r.outcome])).toEqual([
      ["direct-1", "list", "granted"],
      ["direct-2", "read", "granted"],
      ["direct-3", "batch_read", "granted"],
      ["direct-3", "batch_read", "not_found"],
      ["direct-4", "delete", "not_found"],
      ["direct-5", "delete", "denied"],
    ]);
  });

  it("a call without a JWT subject is refused and writes nothing", async () => {
    const maxBefore = await h.lastAuditId();
    await expect(
      h.rpc.call("read_secret", { p_project_id: h.projectId, p_name: "DB_PASSWORD" }, { claims: { role: "authenticated" }, token: "unused" }),
    ).rejects.toMatchObject({ code: "42501" });
    expect(await h.auditRowsAfter(maxBefore)).toHaveLength(0);
  });
});

describe("the secret store is unreachable from the API roles", () => {
  describe.each(API_ROLES)("as %s", (role) => {
    it.each(["secret_store.secrets", "secret_store.secret_versions", "secret_store.grants", "secret_store.projects"])(
      "SELECT from %s is refused with a privilege error",
      async (table) => {
        await expect(asRole(role, `select * from ${table}`)).rejects.toMatchObject({ code: "42501" });
      },
    );

    it("cannot grant itself a permission", async () => {
      await expect(
        asRole(role, `insert into secret_store.grants (project_id, principal, permission) values ('${h.projectId}', 'stranger-1', 'audit:read')`),
      ).rejects.toMatchObject({ code: "42501" });
    });

    it.each([
      `select secret_store.record_access('${"00000000-0000-4000-8000-000000000001"}', null, 'X', null, 'read', 'granted', '{}'::jsonb)`,
      `select secret_store.create_audit_partition('2030-01-01')`,
      `select secret_store.ensure_audit_partitions(12)`,
      `select secret_store.caller_identity()`,
    ])("cannot execute %s", async (statement) => {
      await expect(asRole(role, statement)).rejects.toMatchObject({ code: "42501" });
    });
  });

  it("privileges say the same: no API role may execute record_access, anon and service_role may not call the secret functions", async () => {
    const [privs] = await h.sql`
      select
        has_function_privilege('anon', 'secret_store.record_access(uuid, uuid, text, integer, public.audit_action, public.audit_outcome, jsonb, jsonb)', 'execute') as anon_record,
        has_function_privilege('authenticated', 'secret_store.record_access(uuid, uuid, text, integer, public.audit_action, public.audit_outcome, jsonb, jsonb)', 'execute') as auth_record,
        has_function_privilege('service_role', 'secret_store.record_access(uuid, uuid, text, integer, public.audit_action, public.audit_outcome, jsonb, jsonb)', 'execute') as service_record,
        has_function_privilege('anon', 'public.read_secret(uuid, text, integer, jsonb)', 'execute') as anon_read,
        has_function_privilege('anon', 'public.write_secret(uuid, text, uuid, text, text, text, text, jsonb)', 'execute') as anon_write,
        has_function_privilege('service_role', 'public.read_secret(uuid, text, integer, jsonb)', 'execute') as service_read,
        has_function_privilege('authenticated', 'public.read_secret(uuid, text, integer, jsonb)', 'execute') as auth_read`;
    expect(privs).toEqual({
      anon_record: false,
      auth_record: false,
      service_record: false,
      anon_read: false,
      anon_write: false,
      service_read: false,
      auth_read: true,
    });
  });

  it("anon cannot execute any of the public secret functions", async () => {
    for (const statement of [
      `select public.read_secret('${h.projectId}', 'DB_PASSWORD')`,
      `select public.read_secrets('${h.projectId}', array['DB_PASSWORD'])`,
      `select public.list_secrets('${h.projectId}')`,
      `select public.delete_secret('${h.projectId}', 'DB_PASSWORD')`,
      `select public.write_secret('${h.projectId}', 'X', gen_random_uuid(), 'k', 'AAAAAAAAAAAAAAAA', 'AAAAAAAAAAAAAAAAAAAAAA==')`,
    ]) {
      await expect(asRole("anon", statement, { sub: ADMIN, role: "anon" }), statement).rejects.toMatchObject({ code: "42501" });
    }
  });
});

describe("after every attempt", () => {
  it("the rows that existed before are all still there, unchanged", async () => {
    const [{ max }] = await h.sql<{ max: string }[]>`
      select max(id)::text as max from (select id from public.audit_logs order by id limit ${rowsBefore}) t`;
    expect(await fingerprint(max)).toEqual({ count: rowsBefore, md5: fingerprintBefore });
    // Only the six rows the direct function calls appended were added.
    const [{ n }] = await h.sql<{ n: number }[]>`select count(*)::int as n from public.audit_logs`;
    expect(n).toBe(rowsBefore + 6);
  });
});
