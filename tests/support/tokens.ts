// A test identity provider: real ES256 keys and a JWKS served through an injected fetch, so
// tests exercise the same verification path as production.
import { exportJWK, generateKeyPair, SignJWT, type JWK } from "jose";

export const TEST_SUPABASE_URL = "http://supabase.test";
export const TEST_ISSUER = `${TEST_SUPABASE_URL}/auth/v1`;
export const TEST_AUDIENCE = "authenticated";
export const TEST_JWKS_URL = `${TEST_ISSUER}/.well-known/jwks.json`;

export interface TestIdentityProvider {
  jwks: { keys: JWK[] };
  /** fetch that answers the JWKS URL; anything else fails the test loudly. */
  fetch: typeof fetch;
  token(sub: string, opts?: { actorType?: "user" | "service"; claims?: Record<string, unknown>; expiresIn?: string }): Promise<string>;
  signWith(claims: Record<string, unknown>, header?: Record<string, unknown>): Promise<string>;
}

export async function createTestIdentityProvider(): Promise<TestIdentityProvider> {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const kid = "test-key-1";
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" }] };
  const signWith = (claims: Record<string, unknown>, header: Record<string, unknown> = {}) =>
    new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid, typ: "JWT", ...header }).sign(privateKey);
  return {
    jwks,
    fetch: (async (input: RequestInfo | URL) => {
      const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
      if (url !== TEST_JWKS_URL) throw new Error(`unexpected fetch in test: ${url}`);
      return new Response(JSON.stringify(jwks), { status: 200, headers: { "content-type": "application/json" } });
    }) as typeof fetch,
    signWith,
    token: (sub, opts = {}) =>
      new SignJWT({
        role: "authenticated",
        app_metadata: { actor_type: opts.actorType ?? "user" },
        ...opts.claims,
      })
        .setProtectedHeader({ alg: "ES256", kid, typ: "JWT" })
        .setSubject(sub)
        .setIssuer(TEST_ISSUER)
        .setAudience(TEST_AUDIENCE)
        .setIssuedAt()
        .setExpirationTime(opts.expiresIn ?? "5m")
        .sign(privateKey),
  };
}
