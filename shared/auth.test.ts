import { Hono } from "hono";
import {
  base64url,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  importJWK,
  type CryptoKey,
  type JWK,
  type JWTPayload,
  SignJWT,
} from "jose";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  bearerToken,
  createJwtVerifier,
  type CallerVariables,
  type JwtVerifierOptions,
  requireCaller,
} from "./auth.ts";
import { ApiError, handleAppError } from "./errors.ts";

const ISSUER = "https://abcdefghijklmnop.supabase.co/auth/v1";
const AUDIENCE = "authenticated";
const JWKS_URL = `${ISSUER}/.well-known/jwks.json`;
const HS256_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long";

interface SigningKey {
  kid: string;
  alg: "ES256" | "RS256";
  privateKey: CryptoKey;
  publicJwk: JWK;
}

async function signingKey(alg: "ES256" | "RS256", kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { kid, alg, privateKey, publicJwk };
}

let es256: SigningKey;
let rs256: SigningKey;
let impostor: SigningKey; // a different ES256 key that claims es256's kid

beforeAll(async () => {
  es256 = await signingKey("ES256", "es-1");
  rs256 = await signingKey("RS256", "rs-1");
  impostor = await signingKey("ES256", "es-1");
});

afterEach(() => {
  vi.useRealTimers();
});

/** A JWKS endpoint served through an injected fetch, counting requests. */
function jwksServer(initialKeys: JWK[]) {
  const state = { keys: initialKeys, status: 200, calls: 0, failNetwork: false, body: undefined as string | undefined };
  const fetchImpl = (async (input: RequestInfo | URL) => {
    state.calls += 1;
    expect(String(input)).toBe(JWKS_URL);
    if (state.failNetwork) throw new TypeError("fetch failed: connect ECONNREFUSED");
    const body = state.body ?? JSON.stringify({ keys: state.keys });
    return new Response(body, { status: state.status, headers: { "content-type": "application/json" } });
  }) as typeof fetch;
  return { state, fetchImpl };
}

function verifierFor(server: ReturnType<typeof jwksServer>, extra: Partial<JwtVerifierOptions> = {}) {
  return createJwtVerifier({
    jwksUrl: JWKS_URL,
    issuer: ISSUER,
    audience: AUDIENCE,
    fetchImpl: server.fetchImpl,
    ...extra,
  });
}

interface TokenShape {
  claims?: JWTPayload & Record<string, unknown>;
  issuer?: string;
  audience?: string | string[];
  subject?: string | null;
  expiresIn?: string | number | null;
  notBefore?: string | number;
  issuedAt?: number;
  kid?: string;
}

function supabaseClaims(): Record<string, unknown> {
  return { role: "authenticated", email: "runner@example.com", app_metadata: { provider: "email" } };
}

async function tokenSignedBy(key: SigningKey | { alg: "HS256"; secret: Uint8Array }, shape: TokenShape = {}) {
  const jwt = new SignJWT(shape.claims ?? supabaseClaims())
    .setIssuer(shape.issuer ?? ISSUER)
    .setAudience(shape.audience ?? AUDIENCE)
    .setIssuedAt(shape.issuedAt);
  if (shape.subject !== null) jwt.setSubject(shape.subject ?? "11111111-2222-4333-8444-555555555555");
  if (shape.expiresIn !== null) jwt.setExpirationTime(shape.expiresIn ?? "5m");
  if (shape.notBefore !== undefined) jwt.setNotBefore(shape.notBefore);
  if ("secret" in key) {
    return jwt.setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(key.secret);
  }
  return jwt.setProtectedHeader({ alg: key.alg, kid: shape.kid ?? key.kid, typ: "JWT" }).sign(key.privateKey);
}

async function rejectionOf(promise: Promise<unknown>): Promise<ApiError> {
  const outcome = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(outcome).toBeInstanceOf(ApiError);
  return outcome as ApiError;
}

async function expectUnauthorized(promise: Promise<unknown>, token?: string): Promise<ApiError> {
  const err = await rejectionOf(promise);
  expect(err.status).toBe(401);
  expect(err.code).toBe("unauthorized");
  if (token) expect(err.message).not.toContain(token);
  return err;
}

function unsignedToken(header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const encode = (value: unknown) => base64url.encode(JSON.stringify(value));
  return `${encode(header)}.${encode(payload)}.`;
}

function validPayload(): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return { iss: ISSUER, aud: AUDIENCE, sub: "attacker", role: "service_role", iat: now, exp: now + 300 };
}

describe("createJwtVerifier: accepted tokens", () => {
  it("accepts a valid ES256 token from the JWKS", async () => {
    const server = jwksServer([es256.publicJwk, rs256.publicJwk]);
    const token = await tokenSignedBy(es256);
    const caller = await verifierFor(server)(token);
    expect(caller.sub).toBe("11111111-2222-4333-8444-555555555555");
    expect(caller.role).toBe("authenticated");
    expect(caller.actorType).toBe("user");
    expect(caller.claims.email).toBe("runner@example.com");
    expect(caller.token).toBe(token);
  });

  it("accepts a valid RS256 token from the JWKS", async () => {
    const server = jwksServer([es256.publicJwk, rs256.publicJwk]);
    const caller = await verifierFor(server)(await tokenSignedBy(rs256));
    expect(caller.sub).toBe("11111111-2222-4333-8444-555555555555");
  });

  it("accepts an audience list that contains the expected audience", async () => {
    const server = jwksServer([es256.publicJwk]);
    const caller = await verifierFor(server)(await tokenSignedBy(es256, { audience: ["other", AUDIENCE] }));
    expect(caller.sub).toBeTruthy();
  });

  it("marks service accounts by app_metadata.actor_type and leaves role undefined when absent", async () => {
    const server = jwksServer([es256.publicJwk]);
    const verify = verifierFor(server);
    const service = await verify(
      await tokenSignedBy(es256, { claims: { app_metadata: { actor_type: "service" } }, subject: "runner-7" }),
    );
    expect(service.actorType).toBe("service");
    expect(service.role).toBeUndefined();
    const spoofedTopLevel = await verify(await tokenSignedBy(es256, { claims: { actor_type: "service" } }));
    expect(spoofedTopLevel.actorType).toBe("user");
    for (const actorType of ["user", "Service", "admin", ["service"]]) {
      const other = await verify(await tokenSignedBy(es256, { claims: { app_metadata: { actor_type: actorType } } }));
      expect(other.actorType).toBe("user");
    }
  });
});

describe("createJwtVerifier: JWKS caching and rotation", () => {
  it("fetches the key set once and serves later tokens from the cache", async () => {
    const server = jwksServer([es256.publicJwk, rs256.publicJwk]);
    const verify = verifierFor(server);
    await verify(await tokenSignedBy(es256));
    await verify(await tokenSignedBy(rs256));
    await verify(await tokenSignedBy(es256));
    expect(server.state.calls).toBe(1);
  });

  it("refetches on an unknown kid after key rotation, but not more than once per cooldown", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date("2025-06-01T12:00:00Z"));
    const server = jwksServer([es256.publicJwk]);
    const verify = verifierFor(server, { jwksCooldownMs: 30_000 });
    await verify(await tokenSignedBy(es256));
    expect(server.state.calls).toBe(1);

    const rotated = await signingKey("ES256", "es-2");
    server.state.keys = [es256.publicJwk, rotated.publicJwk];
    const rotatedToken = await tokenSignedBy(rotated);

    // Within the cooldown an unknown kid does not hit the endpoint (kid spraying cannot flood it).
    vi.setSystemTime(new Date("2025-06-01T12:00:05Z"));
    await expectUnauthorized(verify(rotatedToken));
    await expectUnauthorized(verify(await tokenSignedBy(es256, { kid: "made-up" })));
    expect(server.state.calls).toBe(1);

    vi.setSystemTime(new Date("2025-06-01T12:00:31Z"));
    const caller = await verify(await tokenSignedBy(rotated));
    expect(caller.sub).toBeTruthy();
    expect(server.state.calls).toBe(2);
  });

  it("refetches after the cache max age", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date("2025-06-01T12:00:00Z"));
    const server = jwksServer([es256.publicJwk]);
    const verify = verifierFor(server, { jwksCacheMaxAgeMs: 60_000 });
    await verify(await tokenSignedBy(es256));
    vi.setSystemTime(new Date("2025-06-01T12:02:00Z"));
    await verify(await tokenSignedBy(es256));
    expect(server.state.calls).toBe(2);
  });
});

describe("createJwtVerifier: rejected tokens", () => {
  it.each(["", "abc", "a.b.c", "eyJhbGciOiJFUzI1NiJ9.e30", "eyJ.eyJ.sig", "x".repeat(9000)])(
    "rejects the malformed string %#",
    async (token) => {
      const server = jwksServer([es256.publicJwk]);
      await expectUnauthorized(verifierFor(server)(token), token || undefined);
    },
  );

  it("rejects a wrong issuer", async () => {
    const token = await tokenSignedBy(es256, { issuer: "https://evil.example/auth/v1" });
    const err = await expectUnauthorized(verifierFor(jwksServer([es256.publicJwk]))(token), token);
    expect(err.message).toContain('"iss"');
  });

  it("rejects a wrong audience", async () => {
    const token = await tokenSignedBy(es256, { audience: "anon" });
    const err = await expectUnauthorized(verifierFor(jwksServer([es256.publicJwk]))(token), token);
    expect(err.message).toContain('"aud"');
  });

  it("rejects an expired token", async () => {
    const token = await tokenSignedBy(es256, { expiresIn: Math.floor(Date.now() / 1000) - 3600 });
    const err = await expectUnauthorized(verifierFor(jwksServer([es256.publicJwk]))(token), token);
    expect(err.message).toBe("Token has expired");
  });

  it("rejects a token without exp", async () => {
    const token = await tokenSignedBy(es256, { expiresIn: null });
    await expectUnauthorized(verifierFor(jwksServer([es256.publicJwk]))(token), token);
  });

  it("rejects a token whose nbf is in the future", async () => {
    const token = await tokenSignedBy(es256, { notBefore: Math.floor(Date.now() / 1000) + 3600 });
    const err = await expectUnauthorized(verifierFor(jwksServer([es256.publicJwk]))(token), token);
    expect(err.message).toContain('"nbf"');
  });

  it("rejects a token issued in the future, beyond the clock tolerance", async () => {
    const verify = verifierFor(jwksServer([es256.publicJwk]));
    const now = Math.floor(Date.now() / 1000);
    const token = await tokenSignedBy(es256, { issuedAt: now + 3600, expiresIn: now + 7200 });
    const err = await expectUnauthorized(verify(token), token);
    expect(err.message).toContain('"iat"');
    // Within the tolerance (a few seconds of skew) it is still accepted.
    await expect(verify(await tokenSignedBy(es256, { issuedAt: now + 2 }))).resolves.toMatchObject({ sub: expect.any(String) });
  });

  it("rejects a missing, empty, non-string or overlong sub", async () => {
    const verify = verifierFor(jwksServer([es256.publicJwk]));
    await expectUnauthorized(verify(await tokenSignedBy(es256, { subject: null })));
    await expectUnauthorized(verify(await tokenSignedBy(es256, { subject: "" })));
    await expectUnauthorized(verify(await tokenSignedBy(es256, { subject: "u".repeat(256) })));
    await expectUnauthorized(verify(await tokenSignedBy(es256, { subject: null, claims: { sub: 42 } as never })));
    const longest = await verify(await tokenSignedBy(es256, { subject: "u".repeat(255) }));
    expect(longest.sub).toHaveLength(255);
  });

  it('rejects an unsigned "alg: none" token without contacting the JWKS', async () => {
    const server = jwksServer([es256.publicJwk]);
    const verify = verifierFor(server, { hs256Secret: HS256_SECRET });
    for (const alg of ["none", "None", "NONE"]) {
      await expectUnauthorized(verify(unsignedToken({ alg, typ: "JWT" }, validPayload())));
    }
    await expectUnauthorized(verify(unsignedToken({ typ: "JWT" }, validPayload())));
    expect(server.state.calls).toBe(0);
  });

  it("rejects algorithms other than ES256, RS256 (and HS256 when configured)", async () => {
    const server = jwksServer([es256.publicJwk]);
    const verify = verifierFor(server, { hs256Secret: HS256_SECRET });
    const es384 = await generateKeyPair("ES384");
    const ps256 = await generateKeyPair("PS256");
    const claims = validPayload();
    const es384Token = await new SignJWT(claims).setProtectedHeader({ alg: "ES384", kid: "es-1" }).sign(es384.privateKey);
    const ps256Token = await new SignJWT(claims).setProtectedHeader({ alg: "PS256", kid: "rs-1" }).sign(ps256.privateKey);
    const hs512Token = await new SignJWT(claims)
      .setProtectedHeader({ alg: "HS512" })
      .sign(new TextEncoder().encode(HS256_SECRET + HS256_SECRET));
    for (const token of [es384Token, ps256Token, hs512Token]) {
      const err = await expectUnauthorized(verify(token), token);
      expect(err.message).toBe("Token algorithm is not allowed");
    }
    expect(server.state.calls).toBe(0);
  });

  it("rejects an HS256 token when no shared secret is configured", async () => {
    const token = await tokenSignedBy({ alg: "HS256", secret: new TextEncoder().encode(HS256_SECRET) });
    const server = jwksServer([es256.publicJwk]);
    const err = await expectUnauthorized(verifierFor(server)(token), token);
    expect(err.message).toBe("Token algorithm is not allowed");
    expect(server.state.calls).toBe(0);
  });

  it("rejects HS256 tokens whose HMAC key is the public key material (algorithm confusion)", async () => {
    const encoder = new TextEncoder();
    const rsPublicKey = await importJWK(rs256.publicJwk, "RS256");
    const publicKeyForms = [
      encoder.encode(JSON.stringify(es256.publicJwk)),
      encoder.encode(JSON.stringify(rs256.publicJwk)),
      encoder.encode(JSON.stringify({ keys: [es256.publicJwk, rs256.publicJwk] })),
      // The classic attack: the RS256 public key as PEM used as the HMAC secret.
      encoder.encode(await exportSPKI(rsPublicKey as CryptoKey)),
    ];

    for (const hs256Secret of [undefined, HS256_SECRET]) {
      const server = jwksServer([es256.publicJwk, rs256.publicJwk]);
      const verify = verifierFor(server, { hs256Secret });
      for (const secret of publicKeyForms) {
        for (const kid of [undefined, "es-1", "rs-1"]) {
          const jwt = new SignJWT(validPayload()).setProtectedHeader(kid ? { alg: "HS256", kid } : { alg: "HS256" });
          await expectUnauthorized(verify(await jwt.sign(secret)));
        }
      }
      // The JWKS is never consulted for an HS256 token.
      expect(server.state.calls).toBe(0);
    }
  });

  it("rejects a token signed by another key that claims a known kid", async () => {
    const server = jwksServer([es256.publicJwk]);
    const token = await tokenSignedBy(impostor);
    const err = await expectUnauthorized(verifierFor(server)(token), token);
    expect(err.message).toBe("Token signature is invalid");
  });

  it("rejects a token whose kid names a key of another type", async () => {
    const server = jwksServer([es256.publicJwk, rs256.publicJwk]);
    const token = await tokenSignedBy(rs256, { kid: "es-1" });
    await expectUnauthorized(verifierFor(server, { jwksCooldownMs: 0 })(token), token);
  });

  it("rejects a token with an altered payload", async () => {
    const server = jwksServer([es256.publicJwk]);
    const [header, , signature] = (await tokenSignedBy(es256)).split(".");
    const forged = `${header}.${base64url.encode(JSON.stringify(validPayload()))}.${signature}`;
    await expectUnauthorized(verifierFor(server)(forged), forged);
  });
});

describe("createJwtVerifier: legacy HS256", () => {
  it("accepts an HS256 token signed with the configured secret", async () => {
    const server = jwksServer([es256.publicJwk]);
    const verify = verifierFor(server, { hs256Secret: HS256_SECRET });
    const token = await tokenSignedBy({ alg: "HS256", secret: new TextEncoder().encode(HS256_SECRET) });
    const caller = await verify(token);
    expect(caller.sub).toBe("11111111-2222-4333-8444-555555555555");
    expect(caller.role).toBe("authenticated");
    expect(server.state.calls).toBe(0);
  });

  it("still checks claims on the HS256 path", async () => {
    const verify = verifierFor(jwksServer([]), { hs256Secret: HS256_SECRET });
    const secret = new TextEncoder().encode(HS256_SECRET);
    await expectUnauthorized(verify(await tokenSignedBy({ alg: "HS256", secret }, { audience: "anon" })));
    await expectUnauthorized(
      verify(await tokenSignedBy({ alg: "HS256", secret }, { expiresIn: Math.floor(Date.now() / 1000) - 60 })),
    );
  });

  it("rejects an HS256 token signed with a different secret", async () => {
    const verify = verifierFor(jwksServer([]), { hs256Secret: HS256_SECRET });
    const token = await tokenSignedBy({ alg: "HS256", secret: new TextEncoder().encode(`${HS256_SECRET}-other`) });
    await expectUnauthorized(verify(token), token);
  });

  it("refuses to be configured with a short secret, and treats an empty one as not configured", async () => {
    expect(() => verifierFor(jwksServer([]), { hs256Secret: "short" })).toThrow(TypeError);
    const verify = verifierFor(jwksServer([]), { hs256Secret: "" });
    const token = await tokenSignedBy({ alg: "HS256", secret: new TextEncoder().encode(HS256_SECRET) });
    await expectUnauthorized(verify(token), token);
  });
});

describe("createJwtVerifier: JWKS unavailable", () => {
  async function expectAuthUnavailable(server: ReturnType<typeof jwksServer>): Promise<void> {
    const token = await tokenSignedBy(es256);
    const err = await rejectionOf(verifierFor(server)(token));
    expect(err.status).toBe(503);
    expect(err.code).toBe("auth_unavailable");
    expect(err.message).not.toContain(token);
    expect(err.message).not.toContain("ECONNREFUSED");
  }

  it("gives 503 auth_unavailable when the JWKS endpoint answers 500", async () => {
    const server = jwksServer([es256.publicJwk]);
    server.state.status = 500;
    await expectAuthUnavailable(server);
    expect(server.state.calls).toBe(1);
  });

  it("gives 503 when the JWKS endpoint is unreachable", async () => {
    const server = jwksServer([es256.publicJwk]);
    server.state.failNetwork = true;
    await expectAuthUnavailable(server);
  });

  it("gives 503 when the JWKS endpoint answers something that is not a key set", async () => {
    const server = jwksServer([es256.publicJwk]);
    server.state.body = "<html>maintenance</html>";
    await expectAuthUnavailable(server);
    server.state.body = JSON.stringify({ nope: true });
    await expectAuthUnavailable(server);
  });

  it("recovers once the endpoint is back", async () => {
    const server = jwksServer([es256.publicJwk]);
    server.state.status = 503;
    const verify = verifierFor(server);
    const token = await tokenSignedBy(es256);
    expect((await rejectionOf(verify(token))).status).toBe(503);
    server.state.status = 200;
    expect((await verify(token)).sub).toBeTruthy();
  });
});

describe("bearerToken", () => {
  it("extracts the token after a case-insensitive Bearer scheme", () => {
    expect(bearerToken("Bearer abc.def.ghi")).toBe("abc.def.ghi");
    expect(bearerToken("bearer abc.def.ghi")).toBe("abc.def.ghi");
  });

  it.each([undefined, "", "abc.def.ghi", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc.def.ghi", "Bearer a b", "Bearerabc.def.ghi"])(
    "throws 401 for %j",
    (header) => {
      let thrown: unknown;
      try {
        bearerToken(header);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(ApiError);
      expect((thrown as ApiError).status).toBe(401);
      expect((thrown as ApiError).code).toBe("unauthorized");
    },
  );
});

describe("requireCaller middleware", () => {
  function appWith(server: ReturnType<typeof jwksServer>) {
    const app = new Hono<{ Variables: CallerVariables }>();
    app.onError(handleAppError);
    app.use("*", requireCaller(verifierFor(server)));
    app.get("/whoami", (c) => {
      const caller = c.get("caller");
      return c.json({ sub: caller.sub, actorType: caller.actorType });
    });
    return app;
  }

  it("sets the verified caller for the handler", async () => {
    const res = await appWith(jwksServer([es256.publicJwk])).request("/whoami", {
      headers: { authorization: `Bearer ${await tokenSignedBy(es256)}` },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ sub: "11111111-2222-4333-8444-555555555555", actorType: "user" });
  });

  it.each([
    ["no Authorization header", async () => undefined],
    ["a header without the Bearer scheme", async () => tokenSignedBy(es256)],
    ["an expired token", async () => `Bearer ${await tokenSignedBy(es256, { expiresIn: 1 })}`],
    ["a token from another issuer", async () => `Bearer ${await tokenSignedBy(es256, { issuer: "https://x" })}`],
  ])("answers 401 in the envelope for %s", async (_label, header) => {
    const authorization = await header();
    const res = await appWith(jwksServer([es256.publicJwk])).request("/whoami", {
      headers: authorization ? { authorization } : {},
    });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe("Bearer");
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ error: { code: "unauthorized", message: "Missing or invalid bearer token" } });
    if (authorization) expect(text).not.toContain(authorization.replace(/^Bearer /, ""));
  });

  it("answers 503 auth_unavailable when the key set cannot be fetched", async () => {
    const server = jwksServer([es256.publicJwk]);
    server.state.status = 502;
    const res = await appWith(server).request("/whoami", {
      headers: { authorization: `Bearer ${await tokenSignedBy(es256)}` },
    });
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: { code: string } };
    expect(body.error.code).toBe("auth_unavailable");
  });
});
