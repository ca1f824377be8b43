// The local stack's key material: created once, reused, private files, tokens shaped like
// Supabase Auth's and verifiable with the published JWKS alone.
import { mkdtempSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { base64ToBytes, parseKeyring } from "../../shared/crypto.ts";
import {
  devIssuer,
  ensureDevKeys,
  KEYRING_FILE,
  mintDevToken,
  publicJwks,
  SIGNING_KEY_FILE,
} from "../../scripts/lib/dev-keys.ts";

const freshDir = () => mkdtempSync(join(tmpdir(), "dev-keys-"));

describe("ensureDevKeys", () => {
  it("creates the signing key and keyring once, private to the owner, and reuses them", () => {
    const dir = freshDir();
    const first = ensureDevKeys(dir);
    const second = ensureDevKeys(dir);
    expect(second).toEqual(first);
    for (const file of [SIGNING_KEY_FILE, KEYRING_FILE]) {
      expect(statSync(join(dir, file)).mode & 0o777).toBe(0o600);
    }
    expect(first.signingKey).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256" });
    expect(first.signingKey.kid).toMatch(/\S/);
  });

  it("writes a keyring shared/crypto accepts: an active key id naming 32 random bytes", async () => {
    const { keyring } = ensureDevKeys(freshDir());
    expect(base64ToBytes(keyring.keys[keyring.activeKeyId])?.length).toBe(32);
    const parsed = await parseKeyring(JSON.stringify(keyring.keys), keyring.activeKeyId);
    expect(parsed.activeKeyId).toBe(keyring.activeKeyId);
  });

  it("refuses a damaged file with a message naming the file, not its content", () => {
    const dir = freshDir();
    writeFileSync(join(dir, KEYRING_FILE), '{"activeKeyId":"k1","keys":{"k2":"c2VjcmV0LWtleS1ieXRlcw=="}}');
    let message = "";
    try {
      ensureDevKeys(dir);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(new RegExp(`${KEYRING_FILE}.*delete it`));
    expect(message).not.toContain("c2VjcmV0");
  });
});

describe("publicJwks", () => {
  it("publishes the public key only", () => {
    const { signingKey } = ensureDevKeys(freshDir());
    const [key] = publicJwks(signingKey).keys;
    expect(key).not.toHaveProperty("d");
    expect(key).toMatchObject({ kty: "EC", crv: "P-256", kid: signingKey.kid, x: signingKey.x, y: signingKey.y });
  });
});

describe("mintDevToken", () => {
  it("mints a Supabase-shaped access token the JWKS verifies", async () => {
    const { signingKey, jwks } = ensureDevKeys(freshDir());
    const issuer = devIssuer("http://127.0.0.1:54321/");
    expect(issuer).toBe("http://127.0.0.1:54321/auth/v1");
    const token = await mintDevToken({ signingKey, sub: "runner-1", actorType: "service", issuer, expiresIn: 600 });

    expect(decodeProtectedHeader(token)).toEqual({ alg: "ES256", kid: signingKey.kid, typ: "JWT" });
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer, audience: "authenticated" });
    expect(payload).toMatchObject({
      sub: "runner-1",
      role: "authenticated",
      aud: "authenticated",
      iss: issuer,
      app_metadata: { actor_type: "service" },
    });
    expect(payload.exp! - payload.iat!).toBe(600);
  });

  it("defaults to a user token valid for one hour", async () => {
    const { signingKey } = ensureDevKeys(freshDir());
    const token = await mintDevToken({ signingKey, sub: "admin-1", issuer: "http://x/auth/v1" });
    const payload = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8"));
    expect(payload.app_metadata).toEqual({ actor_type: "user" });
    expect(payload.exp - payload.iat).toBe(3600);
  });

  it("keeps the private key out of the token", async () => {
    const { signingKey } = ensureDevKeys(freshDir());
    const token = await mintDevToken({ signingKey, sub: "admin-1", issuer: "http://x/auth/v1" });
    const decoded = token
      .split(".")
      .slice(0, 2)
      .map((part) => Buffer.from(part, "base64url").toString("utf8"))
      .join("");
    expect(decoded).not.toContain(signingKey.d);
  });
});
