import { describe, expect, it } from "vitest";
import {
  base64ToBytes,
  bytesToBase64,
  generateKeyBase64,
  KeyringError,
  openSecretValue,
  parseKeyring,
  sealSecretValue,
  SecretDecryptionError,
  type SealedValue,
  type SecretBinding,
} from "./crypto.ts";

const binding: SecretBinding = {
  projectId: "0b6d3a52-7d0e-4a57-9c55-1f0f4c7e8a11",
  secretName: "STRIPE_API_KEY",
  versionId: "8f1c2e44-2f5e-4f0a-a0a4-5d9c1b2e3f40",
};

function keyringWith(ids: string[]): { json: string; keys: Record<string, string> } {
  const keys = Object.fromEntries(ids.map((id) => [id, generateKeyBase64()]));
  return { json: JSON.stringify(keys), keys };
}

// Flips one bit of the byte at `index` of a base64 string's decoded bytes.
function flipBit(base64: string, index: number): string {
  const bytes = base64ToBytes(base64)!;
  bytes[index] ^= 0x01;
  return bytesToBase64(bytes);
}

async function expectDecryptionError(promise: Promise<unknown>, reason?: string): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SecretDecryptionError);
  expect((err as Error).message).toBe("Secret value could not be decrypted");
  if (reason) expect((err as SecretDecryptionError).reason).toBe(reason);
}

describe("seal and open", () => {
  it("round-trips a value, including non-ASCII and a leading BOM", async () => {
    const { json } = keyringWith(["k1"]);
    const keyring = await parseKeyring(json, "k1");
    for (const value of ["sk_live_abc123", "", "pässwörd 🔑", "\uFEFFstarts with a BOM", "x".repeat(100_000)]) {
      const sealed = await sealSecretValue(keyring, binding, value);
      expect(sealed.keyId).toBe("k1");
      expect(base64ToBytes(sealed.nonce)).toHaveLength(12);
      expect(sealed.ciphertext).not.toContain(value || "\u0000");
      expect(await openSecretValue(keyring, binding, sealed)).toBe(value);
    }
  });

  it("produces a different nonce and ciphertext each time the same value is sealed", async () => {
    const keyring = await parseKeyring(keyringWith(["k1"]).json, "k1");
    const first = await sealSecretValue(keyring, binding, "same value");
    const second = await sealSecretValue(keyring, binding, "same value");
    expect(first.nonce).not.toBe(second.nonce);
    expect(first.ciphertext).not.toBe(second.ciphertext);
  });

  it("still opens values sealed under an old key after the active key changes", async () => {
    const { json } = keyringWith(["k1", "k2"]);
    const before = await parseKeyring(json, "k1");
    const sealedWithOld = await sealSecretValue(before, binding, "old value");

    const after = await parseKeyring(json, "k2");
    const sealedWithNew = await sealSecretValue(after, binding, "new value");
    expect(sealedWithNew.keyId).toBe("k2");
    expect(await openSecretValue(after, binding, sealedWithOld)).toBe("old value");
    expect(await openSecretValue(after, binding, sealedWithNew)).toBe("new value");
  });

  it("rejects a well-formed value that cannot round-trip (lone surrogate) without echoing it", async () => {
    const keyring = await parseKeyring(keyringWith(["k1"]).json, "k1");
    await expect(sealSecretValue(keyring, binding, "abc\uD800def")).rejects.toThrow(
      /^Secret value is not well-formed Unicode$/,
    );
  });
});

describe("open refuses altered or misplaced values", () => {
  async function sealedFixture(): Promise<{ keyring: Awaited<ReturnType<typeof parseKeyring>>; sealed: SealedValue }> {
    const keyring = await parseKeyring(keyringWith(["k1"]).json, "k1");
    return { keyring, sealed: await sealSecretValue(keyring, binding, "sk_live_abc123") };
  }

  it("fails on a tampered ciphertext byte", async () => {
    const { keyring, sealed } = await sealedFixture();
    await expectDecryptionError(
      openSecretValue(keyring, binding, { ...sealed, ciphertext: flipBit(sealed.ciphertext, 0) }),
      "authentication_failed",
    );
  });

  it("fails on a tampered tag byte", async () => {
    const { keyring, sealed } = await sealedFixture();
    const lastByte = base64ToBytes(sealed.ciphertext)!.length - 1;
    await expectDecryptionError(
      openSecretValue(keyring, binding, { ...sealed, ciphertext: flipBit(sealed.ciphertext, lastByte) }),
      "authentication_failed",
    );
  });

  it("fails on a tampered nonce", async () => {
    const { keyring, sealed } = await sealedFixture();
    await expectDecryptionError(
      openSecretValue(keyring, binding, { ...sealed, nonce: flipBit(sealed.nonce, 5) }),
      "authentication_failed",
    );
  });

  it.each([
    ["another project", { projectId: "a1b2c3d4-0000-4000-8000-000000000000" }],
    ["another secret name", { secretName: "GITHUB_TOKEN" }],
    ["another version", { versionId: "00000000-0000-4000-8000-000000000001" }],
  ])("fails when moved to %s", async (_label, change) => {
    const { keyring, sealed } = await sealedFixture();
    await expectDecryptionError(openSecretValue(keyring, { ...binding, ...change }, sealed), "authentication_failed");
  });

  it("does not confuse bindings whose fields differ only in where a separator falls", async () => {
    const keyring = await parseKeyring(keyringWith(["k1"]).json, "k1");
    const left: SecretBinding = { projectId: "p", secretName: "a", versionId: "b,c" };
    const right: SecretBinding = { projectId: "p", secretName: "a,b", versionId: "c" };
    const sealed = await sealSecretValue(keyring, left, "value");
    await expectDecryptionError(openSecretValue(keyring, right, sealed), "authentication_failed");
  });

  it("fails for an unknown key id", async () => {
    const { keyring, sealed } = await sealedFixture();
    await expectDecryptionError(openSecretValue(keyring, binding, { ...sealed, keyId: "k9" }), "unknown_key");
  });

  it("fails under a different key with the same id", async () => {
    const { sealed } = await sealedFixture();
    const other = await parseKeyring(keyringWith(["k1"]).json, "k1");
    await expectDecryptionError(openSecretValue(other, binding, sealed), "authentication_failed");
  });

  it("fails for malformed base64, short nonce or truncated ciphertext", async () => {
    const { keyring, sealed } = await sealedFixture();
    await expectDecryptionError(openSecretValue(keyring, binding, { ...sealed, nonce: "***" }), "malformed");
    await expectDecryptionError(openSecretValue(keyring, binding, { ...sealed, nonce: "AAAA" }), "malformed");
    await expectDecryptionError(openSecretValue(keyring, binding, { ...sealed, ciphertext: "AAAA" }), "malformed");
  });
});

describe("parseKeyring", () => {
  async function keyringErrorFrom(json: string, active: string): Promise<KeyringError> {
    const err = await parseKeyring(json, active).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(KeyringError);
    return err as KeyringError;
  }

  it("loads every key and the active id", async () => {
    const { json } = keyringWith(["2024-01", "2025_02"]);
    const keyring = await parseKeyring(json, "2025_02");
    expect(keyring.activeKeyId).toBe("2025_02");
    expect([...keyring.keys.keys()]).toEqual(["2024-01", "2025_02"]);
  });

  it("rejects JSON that does not parse, without quoting it", async () => {
    const keyMaterial = generateKeyBase64();
    const err = await keyringErrorFrom(`{"k1": "${keyMaterial}"`, "k1");
    expect(err.message).toBe("Keyring is not valid JSON");
  });

  it.each(["[]", "null", '"k1"', "{}"])("rejects a keyring that is not a non-empty object: %s", async (json) => {
    const err = await keyringErrorFrom(json, "k1");
    expect(err.message).toMatch(/Keyring (must be a JSON object|has no keys)/);
  });

  it("rejects a key that is not exactly 32 bytes, without echoing it", async () => {
    const shortKey = bytesToBase64(crypto.getRandomValues(new Uint8Array(16)));
    const longKey = bytesToBase64(crypto.getRandomValues(new Uint8Array(64)));
    for (const badKey of [shortKey, longKey]) {
      const err = await keyringErrorFrom(JSON.stringify({ k1: badKey }), "k1");
      expect(err.message).toBe("Keyring entry #1: key must decode to exactly 32 bytes");
      expect(err.message).not.toContain(badKey);
    }
  });

  it("rejects a key that is not base64 or not a string, without echoing it", async () => {
    const notBase64 = "this-is-not-base64-at-all!!";
    const err = await keyringErrorFrom(JSON.stringify({ k1: generateKeyBase64(), k2: notBase64 }), "k1");
    expect(err.message).toBe("Keyring entry #2: key is not valid base64");
    expect(err.message).not.toContain(notBase64);
    const numeric = await keyringErrorFrom(JSON.stringify({ k1: 42 }), "k1");
    expect(numeric.message).toBe("Keyring entry #1: key must be a base64 string");
  });

  it("rejects an invalid key id without echoing it (it may be a key pasted in the wrong place)", async () => {
    const keyMaterial = generateKeyBase64();
    const err = await keyringErrorFrom(JSON.stringify({ [keyMaterial]: "k1" }), "k1");
    expect(err.message).toMatch(/^Keyring entry #1: key id must match/);
    expect(err.message).not.toContain(keyMaterial);
  });

  it("rejects a missing active key without echoing the id", async () => {
    const { json, keys } = keyringWith(["k1"]);
    const err = await keyringErrorFrom(json, "k2");
    expect(err.message).toBe("Active key id is not present in the keyring");
    expect(err.message).not.toContain(keys.k1);
    const invalid = await keyringErrorFrom(json, "");
    expect(invalid.message).toMatch(/^Active key id must match/);
  });
});

describe("generateKeyBase64", () => {
  it("returns distinct 32-byte keys in strict base64", () => {
    const first = generateKeyBase64();
    const second = generateKeyBase64();
    expect(base64ToBytes(first)).toHaveLength(32);
    expect(first).not.toBe(second);
  });
});
