// Secret values are sealed with AES-256-GCM (WebCrypto) before they reach the database.
// The project, secret name and version are bound as additional authenticated data, so a
// ciphertext copied to another row does not open. Error messages never contain key material,
// key ids from the environment, plaintext or ciphertext.

export interface Keyring {
  activeKeyId: string;
  keys: Map<string, CryptoKey>;
}

export interface SecretBinding {
  projectId: string;
  secretName: string;
  versionId: string;
}

export interface SealedValue {
  keyId: string;
  /** base64, 12 bytes */
  nonce: string;
  /** base64, ciphertext followed by the 16-byte GCM tag */
  ciphertext: string;
}

/** The keyring configuration is unusable. The message says what is wrong, never with key bytes. */
export class KeyringError extends Error {
  override readonly name = "KeyringError";
}

export type SecretDecryptionFailure = "unknown_key" | "malformed" | "authentication_failed";

/** A sealed value could not be opened. The message is constant; `reason` is safe to log. */
export class SecretDecryptionError extends Error {
  override readonly name = "SecretDecryptionError";
  readonly reason: SecretDecryptionFailure;
  constructor(reason: SecretDecryptionFailure) {
    super("Secret value could not be decrypted");
    this.reason = reason;
  }
}

const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const GCM_TAG_BYTES = 16;
const ADDITIONAL_DATA_VERSION = "v1";

const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  // Chunked so large values do not exceed the argument limit of String.fromCharCode.
  for (let offset = 0; offset < bytes.length; offset += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(offset, offset + 0x8000));
  }
  return btoa(binary);
}

/** Strict standard base64 (with padding). Returns null instead of throwing on bad input. */
export function base64ToBytes(text: string): Uint8Array<ArrayBuffer> | null {
  if (typeof text !== "string" || !STRICT_BASE64.test(text)) return null;
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let index = 0; index < binary.length; index++) bytes[index] = binary.charCodeAt(index);
  return bytes;
}

/**
 * Parses the keyring from its environment form `{"<key id>": "<base64 of 32 bytes>", ...}`.
 * Entries are named by position in errors, not by id: a misconfigured environment may have a
 * key where an id belongs.
 */
export async function parseKeyring(json: string, activeKeyId: string): Promise<Keyring> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    // The JSON parser's own message can quote the input, so it is not passed on.
    throw new KeyringError("Keyring is not valid JSON");
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new KeyringError('Keyring must be a JSON object of {"<key id>": "<base64 key>"}');
  }
  const entries = Object.entries(parsed as Record<string, unknown>);
  if (entries.length === 0) throw new KeyringError("Keyring has no keys");

  const keys = new Map<string, CryptoKey>();
  for (const [index, [keyId, encodedKey]] of entries.entries()) {
    const position = `Keyring entry #${index + 1}`;
    if (!KEY_ID_PATTERN.test(keyId)) {
      throw new KeyringError(`${position}: key id must match ${KEY_ID_PATTERN.source}`);
    }
    if (typeof encodedKey !== "string") throw new KeyringError(`${position}: key must be a base64 string`);
    const keyBytes = base64ToBytes(encodedKey);
    if (keyBytes === null) throw new KeyringError(`${position}: key is not valid base64`);
    if (keyBytes.length !== KEY_BYTES) {
      keyBytes.fill(0);
      throw new KeyringError(`${position}: key must decode to exactly ${KEY_BYTES} bytes`);
    }
    const key = await crypto.subtle.importKey("raw", keyBytes, { name: "AES-GCM" }, false, [
      "encrypt",
      "decrypt",
    ]);
    keyBytes.fill(0);
    keys.set(keyId, key);
  }

  if (typeof activeKeyId !== "string" || !KEY_ID_PATTERN.test(activeKeyId)) {
    throw new KeyringError(`Active key id must match ${KEY_ID_PATTERN.source}`);
  }
  if (!keys.has(activeKeyId)) throw new KeyringError("Active key id is not present in the keyring");
  return { activeKeyId, keys };
}

function assertBinding(binding: SecretBinding): void {
  const fields = [binding?.projectId, binding?.secretName, binding?.versionId];
  if (!fields.every((field) => typeof field === "string" && field.length > 0)) {
    throw new TypeError("Secret binding needs non-empty projectId, secretName and versionId");
  }
}

// A JSON array of strings is canonical and unambiguous: every field is quoted and escaped, so
// ("a,b", "c") and ("a", "b,c") encode differently. The version tag allows a future format.
function additionalDataFor(binding: SecretBinding): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(
    JSON.stringify([ADDITIONAL_DATA_VERSION, binding.projectId, binding.secretName, binding.versionId]),
  );
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export async function sealSecretValue(
  keyring: Keyring,
  binding: SecretBinding,
  plaintext: string,
): Promise<SealedValue> {
  assertBinding(binding);
  if (typeof plaintext !== "string") throw new TypeError("Secret value must be a string");
  // TextEncoder would silently replace a lone surrogate with U+FFFD: the value read back would
  // differ from the value written.
  if (LONE_SURROGATE.test(plaintext)) throw new TypeError("Secret value is not well-formed Unicode");
  const key = keyring.keys.get(keyring.activeKeyId);
  if (key === undefined) throw new KeyringError("Active key id is not present in the keyring");

  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const ciphertext = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: additionalDataFor(binding), tagLength: GCM_TAG_BYTES * 8 },
    key,
    new TextEncoder().encode(plaintext),
  );
  return {
    keyId: keyring.activeKeyId,
    nonce: bytesToBase64(nonce),
    ciphertext: bytesToBase64(new Uint8Array(ciphertext)),
  };
}

export async function openSecretValue(
  keyring: Keyring,
  binding: SecretBinding,
  sealed: SealedValue,
): Promise<string> {
  assertBinding(binding);
  const key = typeof sealed?.keyId === "string" ? keyring.keys.get(sealed.keyId) : undefined;
  if (key === undefined) throw new SecretDecryptionError("unknown_key");
  const nonce = base64ToBytes(sealed.nonce);
  const ciphertext = base64ToBytes(sealed.ciphertext);
  if (nonce === null || nonce.length !== NONCE_BYTES || ciphertext === null || ciphertext.length < GCM_TAG_BYTES) {
    throw new SecretDecryptionError("malformed");
  }
  let plaintext: ArrayBuffer;
  try {
    plaintext = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: nonce, additionalData: additionalDataFor(binding), tagLength: GCM_TAG_BYTES * 8 },
      key,
      ciphertext,
    );
  } catch {
    throw new SecretDecryptionError("authentication_failed");
  }
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(plaintext);
  } catch {
    throw new SecretDecryptionError("malformed");
  }
}

/** A fresh random 32-byte key, base64, for the keyring. */
export function generateKeyBase64(): string {
  const keyBytes = crypto.getRandomValues(new Uint8Array(KEY_BYTES));
  const encoded = bytesToBase64(keyBytes);
  keyBytes.fill(0);
  return encoded;
}
