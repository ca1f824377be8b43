// Keyset cursors for the audit query. A cursor names a position (timestamp, id) in one project's
// trail under one filter set, and is sealed with HMAC-SHA256 so that it cannot be altered or
// minted by a client. It confers no authority: every page re-checks audit:read on the project in
// the database, and a cursor is refused (400) unless it was issued for the same project and the
// same filters as the request presenting it. So a cursor taken from one project cannot read
// another, and a tampered one is rejected before the database is asked.
import { ApiError } from "../../shared/errors.ts";
import { base64ToBytes } from "../../shared/crypto.ts";

export interface CursorPosition {
  /** UTC, microseconds: "2026-11-27T10:15:00.123456Z" */
  timestamp: string;
  id: string;
}

export interface CursorCodec {
  encode(projectId: string, canonicalFilters: string, position: CursorPosition): Promise<string>;
  /** The position, or ApiError 400 naming `cursor`. */
  decode(cursor: string, projectId: string, canonicalFilters: string): Promise<CursorPosition>;
}

const CURSOR_VERSION = 1;
const MAC_CONTEXT = "audit-logs cursor v1\n";
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const ID = /^[1-9][0-9]{0,18}$/;
const CURSOR_SHAPE = /^[A-Za-z0-9_-]{1,800}\.[A-Za-z0-9_-]{43}$/;

const encoder = new TextEncoder();

function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array<ArrayBuffer> | null {
  const standard = text.replace(/-/g, "+").replace(/_/g, "/");
  return base64ToBytes(standard + "=".repeat((4 - (standard.length % 4)) % 4));
}

async function filterDigest(projectId: string, canonicalFilters: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(`${projectId}\n${canonicalFilters}`));
  return base64url(new Uint8Array(digest).subarray(0, 16));
}

function invalidCursor(message = "is not a valid cursor for this query"): ApiError {
  return new ApiError(400, "invalid_request", "Invalid cursor", [{ parameter: "cursor", message }]);
}

/**
 * The HMAC key: AUDIT_CURSOR_SECRET when configured, else derived (HKDF-SHA256, its own label)
 * from the active keyring key, so every instance of the function agrees without new setup.
 */
export async function cursorKeyFrom(opts: { cursorSecret?: string; keyringJson: string; activeKeyId: string }): Promise<CryptoKey> {
  const hmac = { name: "HMAC", hash: "SHA-256" } as const;
  if (opts.cursorSecret) {
    return crypto.subtle.importKey("raw", encoder.encode(opts.cursorSecret), hmac, false, ["sign", "verify"]);
  }
  const keyring = JSON.parse(opts.keyringJson) as Record<string, string>;
  const raw = base64ToBytes(keyring[opts.activeKeyId] ?? "");
  if (raw === null) throw new Error("audit-logs: cannot derive the cursor key from the keyring");
  const base = await crypto.subtle.importKey("raw", raw, "HKDF", false, ["deriveKey"]);
  raw.fill(0);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info: encoder.encode("audit-logs cursor hmac v1") },
    base,
    { ...hmac, length: 256 },
    false,
    ["sign", "verify"],
  );
}

export function createCursorCodec(key: CryptoKey): CursorCodec {
  const mac = async (body: string) =>
    new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(MAC_CONTEXT + body)));

  return {
    async encode(projectId, canonicalFilters, position) {
      const payload = { v: CURSOR_VERSION, f: await filterDigest(projectId, canonicalFilters), t: position.timestamp, i: position.id };
      const body = base64url(encoder.encode(JSON.stringify(payload)));
      return `${body}.${base64url(await mac(body))}`;
    },

    async decode(cursor, projectId, canonicalFilters) {
      if (!CURSOR_SHAPE.test(cursor)) throw invalidCursor();
      const [body, tag] = cursor.split(".");
      const tagBytes = fromBase64url(tag);
      if (tagBytes === null) throw invalidCursor();
      const authentic = await crypto.subtle.verify("HMAC", key, tagBytes, encoder.encode(MAC_CONTEXT + body));
      if (!authentic) throw invalidCursor();
      const bodyBytes = fromBase64url(body);
      let payload: { v?: unknown; f?: unknown; t?: unknown; i?: unknown };
      try {
        payload = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bodyBytes ?? new Uint8Array()));
      } catch {
        throw invalidCursor();
      }
      if (payload?.v !== CURSOR_VERSION || typeof payload.t !== "string" || typeof payload.i !== "string") throw invalidCursor();
      if (!TIMESTAMP.test(payload.t) || !ID.test(payload.i)) throw invalidCursor();
      if (payload.f !== (await filterDigest(projectId, canonicalFilters))) {
        throw invalidCursor("was issued for another project or other filters");
      }
      return { timestamp: payload.t, id: payload.i };
    },
  };
}
