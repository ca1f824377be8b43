// The secret-proxy's use of the database: each method is one call to an audited SQL function
// (grant check + secret + audit row in one transaction) plus sealing or opening the value here,
// so the database only ever holds ciphertext. A value is opened only after its audit row committed.
import type { Rpc } from "../../shared/db.ts";
import type { VerifiedCaller } from "../../shared/auth.ts";
import type { AuditRequestContext } from "../../shared/request-context.ts";
import { type Keyring, openSecretValue, sealSecretValue, SecretDecryptionError, type SealedValue } from "../../shared/crypto.ts";
import { ApiError } from "../../shared/errors.ts";

export type AccessOutcome = "granted" | "denied" | "not_found";

interface SealedVersion extends SealedValue {
  secret_id: string;
  version: number;
  version_id: string;
}

type KeyIdField = { key_id: string };

export interface SecretValue {
  secretId: string;
  name: string;
  version: number;
  value: string;
}

export interface SecretMetadata {
  secret_id: string;
  name: string;
  description: string | null;
  version: number;
  created_at: string;
  created_by: string;
  updated_at: string;
  updated_by: string;
}

export interface WriteResult {
  action: "create" | "update";
  secretId: string;
  version: number;
}

/** Request-scoped inputs every audited call needs. */
export interface AccessContext {
  caller: VerifiedCaller;
  audit: AuditRequestContext;
  projectId: string;
}

export interface SecretAccess {
  readSecret(ctx: AccessContext, name: string, version?: number): Promise<{ outcome: AccessOutcome; secret?: SecretValue }>;
  readSecrets(ctx: AccessContext, names: string[]): Promise<{ outcome: "granted" | "denied"; secrets: SecretValue[]; missing: string[] }>;
  listSecrets(ctx: AccessContext): Promise<{ outcome: "granted" | "denied"; secrets: SecretMetadata[] }>;
  writeSecret(ctx: AccessContext, name: string, value: string, description?: string): Promise<{ outcome: "granted" | "denied"; result?: WriteResult }>;
  deleteSecret(ctx: AccessContext, name: string): Promise<{ outcome: AccessOutcome }>;
}

export function createSecretAccess(rpc: Rpc, keyring: Keyring): SecretAccess {
  const call = <T>(ctx: AccessContext, fn: string, args: Record<string, unknown>) =>
    rpc.call<T>(fn, { p_project_id: ctx.projectId, ...args, p_request: ctx.audit }, ctx.caller);

  const openOne = async (ctx: AccessContext, name: string, sealed: SealedVersion & KeyIdField): Promise<SecretValue> => ({
    secretId: sealed.secret_id,
    name,
    version: sealed.version,
    value: await openSecretValue(
      keyring,
      { projectId: ctx.projectId, secretName: name, versionId: sealed.version_id },
      { keyId: sealed.key_id, nonce: sealed.nonce, ciphertext: sealed.ciphertext },
    ),
  });

  // Opens the values of a granted read. If any cannot be decrypted, none is returned, the trail
  // gets an 'error' row per name (the 'granted' rows are already committed), and the caller a 500.
  const open = async (
    ctx: AccessContext,
    action: "read" | "batch_read",
    found: { name: string; sealed: SealedVersion & KeyIdField }[],
  ): Promise<SecretValue[]> => {
    const opened = await Promise.allSettled(found.map((f) => openOne(ctx, f.name, f.sealed)));
    const failed = opened.flatMap((o, i) => (o.status === "rejected" ? [{ name: found[i].name, err: o.reason }] : []));
    if (failed.length === 0) return opened.map((o) => (o as PromiseFulfilledResult<SecretValue>).value);
    if (!failed.every((f) => f.err instanceof SecretDecryptionError)) throw failed[0].err;
    await call(ctx, "record_unreadable_secret", {
      p_names: failed.map((f) => f.name),
      p_action: action,
      p_reason: (failed[0].err as SecretDecryptionError).reason,
    });
    throw new ApiError(500, "secret_unreadable", "The secret's value could not be decrypted; the attempt was recorded");
  };

  return {
    async readSecret(ctx, name, version) {
      const res = await call<{ outcome: AccessOutcome } & Partial<SealedVersion & KeyIdField>>(ctx, "read_secret", {
        p_name: name,
        p_version: version ?? null,
      });
      if (res.outcome !== "granted") return { outcome: res.outcome };
      const [secret] = await open(ctx, "read", [{ name, sealed: res as SealedVersion & KeyIdField }]);
      return { outcome: "granted", secret };
    },

    async readSecrets(ctx, names) {
      const res = await call<{
        outcome: "granted" | "denied";
        results: ({ name: string; outcome: AccessOutcome } & Partial<SealedVersion & KeyIdField>)[];
      }>(ctx, "read_secrets", { p_names: names });
      if (res.outcome !== "granted") return { outcome: "denied", secrets: [], missing: [] };
      const found = res.results.filter((r) => r.outcome === "granted");
      return {
        outcome: "granted",
        secrets: await open(ctx, "batch_read", found.map((r) => ({ name: r.name, sealed: r as SealedVersion & KeyIdField }))),
        missing: res.results.filter((r) => r.outcome !== "granted").map((r) => r.name),
      };
    },

    async listSecrets(ctx) {
      const res = await call<{ outcome: "granted" | "denied"; secrets?: SecretMetadata[] }>(ctx, "list_secrets", {});
      return { outcome: res.outcome, secrets: res.secrets ?? [] };
    },

    async writeSecret(ctx, name, value, description) {
      // The version id is bound into the ciphertext before the database assigns a version
      // number, so concurrent writers never race on what they sealed.
      const versionId = crypto.randomUUID();
      const sealed = await sealSecretValue(keyring, { projectId: ctx.projectId, secretName: name, versionId }, value);
      const res = await call<{ outcome: "granted" | "denied"; action?: "create" | "update"; secret_id?: string; version?: number }>(
        ctx,
        "write_secret",
        {
          p_name: name,
          p_version_id: versionId,
          p_key_id: sealed.keyId,
          p_nonce: sealed.nonce,
          p_ciphertext: sealed.ciphertext,
          p_description: description ?? null,
        },
      );
      if (res.outcome !== "granted") return { outcome: "denied" };
      return { outcome: "granted", result: { action: res.action!, secretId: res.secret_id!, version: res.version! } };
    },

    async deleteSecret(ctx, name) {
      return await call<{ outcome: AccessOutcome }>(ctx, "delete_secret", { p_name: name });
    },
  };
}
