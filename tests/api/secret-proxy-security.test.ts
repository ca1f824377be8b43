// Security cases for secret-proxy: bad tokens, forwarding headers, body limits, hostile input.
// A request the function refuses before it knows who is asking writes nothing; a request from a
// known caller is recorded with its advisory address and the raw chain, capped.
import { base64url, exportSPKI, generateKeyPair, importJWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSecretProxyHarness, RUNNER, type SecretProxyHarness } from "../support/secret-proxy-harness.ts";
import { TEST_AUDIENCE, TEST_ISSUER } from "../support/tokens.ts";

let h: SecretProxyHarness;
let h2: SecretProxyHarness; // two trusted proxy hops, a 2 KiB body limit
const responses: string[] = [];
const SECRET = "SEC_EXISTING";
const SECRET_VALUE = "security-test-existing-value-4b1d";

async function call(harness: SecretProxyHarness, method: string, path: string, opts: Parameters<SecretProxyHarness["request"]>[2] = {}) {
  const res = await harness.request(method, path, opts);
  const text = await res.text();
  responses.push(text);
  return { status: res.status, headers: res.headers, text, json: text ? JSON.parse(text) : null };
}

async function rawCall(harness: SecretProxyHarness, path: string, init: RequestInit) {
  const res = await harness.app.request(path, init);
  const text = await res.text();
  responses.push(text);
  return { status: res.status, headers: res.headers, text, json: text ? JSON.parse(text) : null };
}

async function versionsOf(harness: SecretProxyHarness): Promise<number> {
  const [{ n }] = await harness.sql<{ n: number }[]>`select count(*)::int as n from secret_store.secret_versions`;
  return n;
}

beforeAll(async () => {
  [h, h2] = await Promise.all([createSecretProxyHarness(), createSecretProxyHarness({ trustedProxyHops: 2, maxBodyBytes: 2048 })]);
  expect((await call(h, "PUT", `/projects/${h.projectId}/secrets/${SECRET}`, { body: { value: SECRET_VALUE } })).status).toBe(201);
});
afterAll(async () => {
  await Promise.all([h?.close(), h2?.close()]);
});

describe("bad tokens: 401 envelope and zero audit rows", () => {
  const now = () => Math.floor(Date.now() / 1000);
  const validClaims = () => ({ sub: RUNNER, role: "authenticated", iss: TEST_ISSUER, aud: TEST_AUDIENCE, iat: now(), exp: now() + 300 });
  const unsigned = (header: object, payload: object) =>
    `${base64url.encode(JSON.stringify(header))}.${base64url.encode(JSON.stringify(payload))}.`;

  const cases: [string, () => Promise<Record<string, string>>][] = [
    ["no Authorization header", async () => ({})],
    ['"Bearer" without a token', async () => ({ authorization: "Bearer" })],
    ['"Bearer " with only spaces', async () => ({ authorization: "Bearer    " })],
    ["Basic credentials", async () => ({ authorization: "Basic cnVubmVyLTE6cGFzc3dvcmQ=" })],
    ["the token without a scheme", async () => ({ authorization: h.tokens.runner })],
    ["garbage", async () => ({ authorization: "Bearer not-a-jwt" })],
    ["three garbage segments", async () => ({ authorization: "Bearer aaaa.bbbb.cccc" })],
    ["an expired token", async () => ({ authorization: `Bearer ${await h.idp.signWith({ ...validClaims(), iat: now() - 7200, exp: now() - 3600 })}` })],
    ["a token not valid yet (nbf)", async () => ({ authorization: `Bearer ${await h.idp.signWith({ ...validClaims(), nbf: now() + 3600 })}` })],
    ["the wrong issuer", async () => ({ authorization: `Bearer ${await h.idp.signWith({ ...validClaims(), iss: "https://evil.example/auth/v1" })}` })],
    ["no issuer", async () => {
      const { iss: _iss, ...claims } = validClaims();
      return { authorization: `Bearer ${await h.idp.signWith(claims)}` };
    }],
    ["the wrong audience", async () => ({ authorization: `Bearer ${await h.idp.signWith({ ...validClaims(), aud: "anon" })}` })],
    ["no sub", async () => {
      const { sub: _sub, ...claims } = validClaims();
      return { authorization: `Bearer ${await h.idp.signWith(claims)}` };
    }],
    ["an empty sub", async () => ({ authorization: `Bearer ${await h.idp.signWith({ ...validClaims(), sub: "" })}` })],
    ["no exp", async () => {
      const { exp: _exp, ...claims } = validClaims();
      return { authorization: `Bearer ${await h.idp.signWith(claims)}` };
    }],
    ['an unsigned "alg: none" token', async () => ({ authorization: `Bearer ${unsigned({ alg: "none", typ: "JWT" }, validClaims())}` })],
    ['"alg: none" carrying a real kid and a copied signature', async () => {
      const real = h.tokens.runner.split(".");
      return { authorization: `Bearer ${unsigned({ alg: "none", kid: "test-key-1" }, validClaims()).slice(0, -1)}.${real[2]}` };
    }],
    ["an HS256 token (no legacy secret configured)", async () => ({
      authorization: `Bearer ${await new SignJWT(validClaims()).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(new TextEncoder().encode("super-secret-jwt-token-with-at-least-32-characters-long"))}`,
    })],
    ["HS256 signed with the JWKS public key (JWK JSON) as the secret", async () => ({
      authorization: `Bearer ${await new SignJWT(validClaims()).setProtectedHeader({ alg: "HS256", kid: "test-key-1" }).sign(new TextEncoder().encode(JSON.stringify(h.idp.jwks.keys[0])))}`,
    })],
    ["HS256 signed with the JWKS public key (PEM) as the secret", async () => {
      const pem = await exportSPKI((await importJWK(h.idp.jwks.keys[0], "ES256", { extractable: true })) as CryptoKey);
      return { authorization: `Bearer ${await new SignJWT(validClaims()).setProtectedHeader({ alg: "HS256", kid: "test-key-1" }).sign(new TextEncoder().encode(pem))}` };
    }],
    ["a token signed by an unknown key that claims the known kid", async () => {
      const { privateKey } = await generateKeyPair("ES256");
      return { authorization: `Bearer ${await new SignJWT(validClaims()).setProtectedHeader({ alg: "ES256", kid: "test-key-1", typ: "JWT" }).sign(privateKey)}` };
    }],
    ["a token signed by an unknown kid", async () => {
      const { privateKey } = await generateKeyPair("ES256");
      return { authorization: `Bearer ${await new SignJWT(validClaims()).setProtectedHeader({ alg: "ES256", kid: "other-kid" }).sign(privateKey)}` };
    }],
    ["a valid token with one signature byte changed", async () => {
      const [head, body, sig] = h.tokens.runner.split(".");
      const flipped = (sig[5] === "A" ? "B" : "A");
      return { authorization: `Bearer ${head}.${body}.${sig.slice(0, 5)}${flipped}${sig.slice(6)}` };
    }],
    ["a valid signature over a modified payload (sub swapped)", async () => {
      const [head, , sig] = h.tokens.runner.split(".");
      return { authorization: `Bearer ${head}.${base64url.encode(JSON.stringify({ ...validClaims(), sub: "admin-1" }))}.${sig}` };
    }],
    ["an oversized token", async () => ({
      authorization: `Bearer ${await h.idp.signWith({ ...validClaims(), padding: "p".repeat(9000) })}`,
    })],
  ];

  it.each(cases)("%s", async (_label, headersFor) => {
    const headers = await headersFor();
    const before = await h.lastAuditId();
    const versionsBefore = await versionsOf(h);
    const token = null;
    const results = [
      await call(h, "GET", `/projects/${h.projectId}/secrets/${SECRET}`, { token, headers }),
      await call(h, "GET", `/projects/${h.projectId}/secrets`, { token, headers }),
      await call(h, "PUT", `/projects/${h.projectId}/secrets/${SECRET}`, { token, headers, body: { value: "attacker-value" } }),
      await call(h, "POST", `/projects/${h.projectId}/secrets/batch-read`, { token, headers, body: { names: [SECRET] } }),
      await call(h, "DELETE", `/projects/${h.projectId}/secrets/${SECRET}`, { token, headers }),
    ];
    for (const r of results) {
      expect(r.status).toBe(401);
      expect(r.json).toEqual({ error: { code: "unauthorized", message: "Missing or invalid bearer token" } });
      expect(r.headers.get("www-authenticate")).toBe("Bearer");
      expect(r.headers.get("content-type")).toMatch(/^application\/json/);
      expect(r.text).not.toContain(SECRET_VALUE);
      if (headers.authorization && headers.authorization.length > 20) expect(r.text).not.toContain(headers.authorization.slice(-20));
    }
    expect(await h.auditRowsAfter(before)).toHaveLength(0);
    expect(await versionsOf(h)).toBe(versionsBefore);
  });

  it("the same valid token is accepted (control), with a lowercase scheme too", async () => {
    const before = await h.lastAuditId();
    const r = await call(h, "GET", `/projects/${h.projectId}/secrets/${SECRET}`, { token: null, headers: { authorization: `bearer ${h.tokens.runner}` } });
    expect(r.status).toBe(200);
    expect(await h.auditRowsAfter(before)).toHaveLength(1);
  });
});

describe("X-Forwarded-For and User-Agent", () => {
  async function recorded(harness: SecretProxyHarness, headers: Record<string, string>) {
    const before = await harness.lastAuditId();
    const r = await call(harness, "GET", `/projects/${harness.projectId}/secrets/NOT_THERE`, { token: harness.tokens.runner, headers });
    expect(r.status).toBe(404);
    const rows = await harness.auditRowsAfter(before);
    expect(rows).toHaveLength(1);
    return rows[0] as { ip_address: string | null; forwarded_for: string | null; user_agent: string | null };
  }

  it("1 trusted hop: the rightmost entry is the client; spoofed entries to its left are ignored but kept in the chain", async () => {
    const chain = "127.0.0.1, 10.0.0.1, 6.6.6.6, 198.51.100.23";
    expect(await recorded(h, { "x-forwarded-for": chain })).toMatchObject({ ip_address: "198.51.100.23", forwarded_for: chain });
  });

  it("1 trusted hop: IPv6 with brackets and port, IPv4 with port", async () => {
    expect((await recorded(h, { "x-forwarded-for": "1.2.3.4, [2001:DB8::1]:443" })).ip_address).toBe("2001:db8::1");
    expect((await recorded(h, { "x-forwarded-for": "203.0.113.5:8080" })).ip_address).toBe("203.0.113.5");
  });

  it("2 trusted hops: the second entry from the right; everything left of it ignored", async () => {
    const chain = "6.6.6.6, 127.0.0.1, 198.51.100.20, 10.0.0.2";
    expect(await recorded(h2, { "x-forwarded-for": chain })).toMatchObject({ ip_address: "198.51.100.20", forwarded_for: chain });
  });

  it("2 trusted hops but only one entry: no address, chain kept", async () => {
    expect(await recorded(h2, { "x-forwarded-for": "198.51.100.20" })).toMatchObject({ ip_address: null, forwarded_for: "198.51.100.20" });
  });

  it.each([
    ["garbage", "not-an-ip"],
    ["SQL-looking", "1.2.3.4'); delete from public.audit_logs; --"],
    ["SQL-looking in the trusted position", "198.51.100.1, ' or 1=1 --"],
    ["an out-of-range IPv4", "256.1.1.1"],
    ["an octal-looking IPv4", "010.0.0.1"],
    ["an IPv6 zone id", "fe80::1%eth0"],
    ["empty entries", " , , "],
    ["a CIDR", "10.0.0.0/8"],
  ])("malformed (%s): ip_address null, raw chain stored as given", async (_label, chain) => {
    const row = await recorded(h, { "x-forwarded-for": chain });
    expect(row.ip_address).toBeNull();
    expect(row.forwarded_for).toBe(chain.trim() === "" ? null : chain.trim());
  });

  it("no X-Forwarded-For: ip_address and forwarded_for null", async () => {
    expect(await recorded(h, {})).toMatchObject({ ip_address: null, forwarded_for: null });
  });

  it("a huge chain is capped at 1024 characters, keeping the trusted right-hand end, and the address still resolves", async () => {
    const spoofed = Array.from({ length: 300 }, (_, i) => `10.0.${i % 256}.${i % 200}`).join(", ");
    const chain = `${spoofed}, 203.0.113.99`;
    expect(chain.length).toBeGreaterThan(3000);
    const row = await recorded(h, { "x-forwarded-for": chain });
    expect(row.ip_address).toBe("203.0.113.99");
    expect(row.forwarded_for).toHaveLength(1024);
    expect(row.forwarded_for!.startsWith("\u2026")).toBe(true);
    expect(chain.endsWith(row.forwarded_for!.slice(1))).toBe(true);
  });

  it("a huge User-Agent is capped at 512 characters (its start kept)", async () => {
    const ua = `agent/${"U".repeat(5000)}`;
    const row = await recorded(h, { "user-agent": ua });
    expect(row.user_agent).toHaveLength(512);
    expect(row.user_agent).toBe(ua.slice(0, 512));
  });

  it("an SQL-looking User-Agent is stored verbatim", async () => {
    const ua = "Mozilla/5.0'); drop table secret_store.secrets; --";
    expect((await recorded(h, { "user-agent": ua })).user_agent).toBe(ua);
  });
});

describe("bodies", () => {
  const path = () => `/projects/${h.projectId}/secrets/BODY_TEST`;
  async function expectNothingWritten(harness: SecretProxyHarness, before: string, versionsBefore: number) {
    expect(await harness.auditRowsAfter(before)).toHaveLength(0);
    expect(await versionsOf(harness)).toBe(versionsBefore);
    const [{ n }] = await harness.sql<{ n: number }[]>`select count(*)::int as n from secret_store.secrets where name = 'BODY_TEST'`;
    expect(n).toBe(0);
  }

  it.each([
    ["with Content-Length", true],
    ["without Content-Length (streamed)", false],
  ])("a body over maxBodyBytes %s: 413 envelope, nothing written", async (_label, withLength) => {
    for (const [harness, limit] of [[h, 65_536], [h2, 2048]] as const) {
      const before = await harness.lastAuditId();
      const versionsBefore = await versionsOf(harness);
      const body = JSON.stringify({ value: "x".repeat(limit + 10) });
      const headers: Record<string, string> = { authorization: `Bearer ${harness.tokens.admin}`, "content-type": "application/json" };
      if (withLength) headers["content-length"] = String(body.length);
      const bytes = new TextEncoder().encode(body);
      const stream = new ReadableStream({
        start(controller) {
          for (let i = 0; i < bytes.length; i += 1000) controller.enqueue(bytes.slice(i, i + 1000));
          controller.close();
        },
      });
      const r = await rawCall(harness, `/secret-proxy/projects/${harness.projectId}/secrets/BODY_TEST`, {
        method: "PUT",
        headers,
        body: withLength ? body : stream,
        duplex: "half",
      } as RequestInit);
      expect(r.status).toBe(413);
      expect(r.json).toEqual({ error: { code: "payload_too_large", message: `Request body exceeds ${limit} bytes` } });
      await expectNothingWritten(harness, before, versionsBefore);
    }
  });

  it("an oversized body is refused even without a token (before anything else)", async () => {
    const r = await call(h2, "PUT", `/projects/${h2.projectId}/secrets/BODY_TEST`, { token: null, body: { value: "y".repeat(4000) } });
    expect(r.status).toBe(413);
  });

  it("a body just under the limit is accepted (control)", async () => {
    const r = await call(h2, "PUT", `/projects/${h2.projectId}/secrets/BODY_OK`, { body: { value: "z".repeat(1900) } });
    expect(r.status).toBe(201);
  });

  it.each([
    ["malformed JSON", '{"value": "abc', "application/json", 400, "bad_request"],
    ["an empty body", "", "application/json", 400, "bad_request"],
    ["a JSON array", '["abc"]', "application/json", 400, "invalid_request"],
    ["a JSON string", '"abc"', "application/json", 400, "invalid_request"],
    ["null", "null", "application/json", 400, "invalid_request"],
    ["a missing value", '{"description":"d"}', "application/json", 400, "invalid_request"],
    ["an empty value", '{"value":""}', "application/json", 400, "invalid_request"],
    ["a non-string value", '{"value":42}', "application/json", 400, "invalid_request"],
    ["an extra unknown field", '{"value":"abc","extra":"zzz"}', "application/json", 400, "invalid_request"],
    ["a prototype-polluting field", '{"value":"abc","__proto__":{"admin":true}}', "application/json", 400, "invalid_request"],
    ["a description over 1000 characters", JSON.stringify({ value: "abc", description: "d".repeat(1001) }), "application/json", 400, "invalid_request"],
    ["a value over 32 KiB", JSON.stringify({ value: "v".repeat(32_769) }), "application/json", 400, "invalid_request"],
    ["text/plain", '{"value":"abc"}', "text/plain", 415, "unsupported_media_type"],
    ["a form body", "value=abc", "application/x-www-form-urlencoded", 415, "unsupported_media_type"],
  ])("%s: 4xx envelope, nothing written", async (_label, body, contentType, status, code) => {
    const before = await h.lastAuditId();
    const versionsBefore = await versionsOf(h);
    const r = await call(h, "PUT", path(), { body, headers: { "content-type": contentType } });
    expect(r.status).toBe(status);
    expect(r.json.error.code).toBe(code);
    expect(typeof r.json.error.message).toBe("string");
    await expectNothingWritten(h, before, versionsBefore);
  });

  it("no Content-Type at all: 415, nothing written", async () => {
    const before = await h.lastAuditId();
    const r = await rawCall(h, `/secret-proxy${path()}`, { method: "PUT", body: '{"value":"abc"}', headers: { authorization: `Bearer ${h.tokens.admin}` } });
    expect(r.status).toBe(415);
    expect(r.json.error.code).toBe("unsupported_media_type");
    expect(await h.auditRowsAfter(before)).toHaveLength(0);
  });

  it("an extra field in a batch read: 400, nothing written", async () => {
    const before = await h.lastAuditId();
    const r = await call(h, "POST", `/projects/${h.projectId}/secrets/batch-read`, { token: h.tokens.runner, body: { names: [SECRET], include_values: true } });
    expect(r.status).toBe(400);
    expect(await h.auditRowsAfter(before)).toHaveLength(0);
  });
});

describe("SQL-looking input", () => {
  it.each([
    "x';drop table secret_store.secrets;--",
    "A' OR '1'='1",
    "A;DELETE",
    "A--",
    "A B",
    "a.b",
    "public.audit_logs",
    "$1",
    "A%00",
    "%27%3B",
    "Ä_UMLAUT",
    "A".repeat(129),
  ])("the name %j is rejected with 400 on every route, nothing written", async (name) => {
    const before = await h.lastAuditId();
    const enc = encodeURIComponent(name);
    const results = [
      await call(h, "GET", `/projects/${h.projectId}/secrets/${enc}`, { token: h.tokens.runner }),
      await call(h, "PUT", `/projects/${h.projectId}/secrets/${enc}`, { body: { value: "v" } }),
      await call(h, "DELETE", `/projects/${h.projectId}/secrets/${enc}`),
      await call(h, "POST", `/projects/${h.projectId}/secrets/batch-read`, { token: h.tokens.runner, body: { names: [name] } }),
    ];
    for (const r of results) {
      expect(r.status).toBe(400);
      expect(r.json.error.code).toBe("invalid_request");
    }
    expect(await h.auditRowsAfter(before)).toHaveLength(0);
  });

  it("SQL-looking and odd values are stored and read back verbatim", async () => {
    const values = [
      "'; drop table secret_store.secrets; --",
      "' or '1'='1",
      "$1 $$ $tag$ \\x00 \\\\ E'\\n'",
      "Robert'); DROP TABLE students;--\u0000after-nul",
      '{"json": ["in", "a", "value"]}',
      "秘密🔑 \u202e rtl \r\n crlf \t tab",
      "%s %n %x {{template}} ${env}",
    ];
    for (const [i, value] of values.entries()) {
      const name = `SQL_VALUE_${i}`;
      const w = await call(h, "PUT", `/projects/${h.projectId}/secrets/${name}`, { body: { value } });
      expect(w.status).toBe(201);
      const r = await call(h, "GET", `/projects/${h.projectId}/secrets/${name}`, { token: h.tokens.runner });
      expect(r.status).toBe(200);
      expect(r.json.value).toBe(value);
    }
    const batch = await call(h, "POST", `/projects/${h.projectId}/secrets/batch-read`, {
      token: h.tokens.runner,
      body: { names: values.map((_, i) => `SQL_VALUE_${i}`) },
    });
    expect(batch.json.secrets.map((s: { value: string }) => s.value)).toEqual(values);
    const [{ n }] = await h.sql<{ n: number }[]>`select count(*)::int as n from secret_store.secrets`;
    expect(n).toBe(1 + values.length);
  });
});

describe("routing", () => {
  it.each([
    ["GET", "/secret-proxy/nope", false],
    ["GET", "/secret-proxy", false],
    ["GET", "/nope", false],
    ["GET", "/secret-proxy/projects", true],
    ["POST", "/secret-proxy/projects/00000000-0000-4000-8000-000000000001/secrets/X", true],
    ["PATCH", "/secret-proxy/projects/00000000-0000-4000-8000-000000000001/secrets/X", true],
    ["GET", "/secret-proxy/projects/00000000-0000-4000-8000-000000000001/secrets/X/extra", true],
  ])("%s %s: 404 route_not_found envelope, nothing written", async (method, path, withToken) => {
    const before = await h.lastAuditId();
    const r = await rawCall(h, path, { method, headers: withToken ? { authorization: `Bearer ${h.tokens.admin}` } : {} });
    expect(r.status).toBe(404);
    expect(r.json).toEqual({ error: { code: "route_not_found", message: "No route matches this method and path" } });
    expect(await h.auditRowsAfter(before)).toHaveLength(0);
  });
});

describe("every response of this file", () => {
  it("is free of stack traces, file paths and internal error text", () => {
    expect(responses.length).toBeGreaterThan(150);
    for (const text of responses) {
      expect(text).not.toMatch(/\n\s+at\s|\bat\s+\S+\s+\(|\.ts:\d+|\.js:\d+|node_modules|file:\/\/|PostgresError|ZodError|SyntaxError|stack/i);
    }
  });
});
