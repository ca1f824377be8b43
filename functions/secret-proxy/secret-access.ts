// The secret-proxy's use of the database: each method is one call to an audited SQL function
// (grant check + secret + audit row in one transaction) plus sealing or opening the value here,
// so the database only ever holds ciphertext. A value is opened only after its audit row committed.
import type { Rpc } from "../../shared/db.ts";
import type { VerifiedCaller } from "../../shared/auth.ts";
import type { AuditRequestContext } from "../../shared/request-context.ts";
import { type Keyring, openSecretValue, sealSecretValue, type SealedValue } from "../../shared/crypto.ts";

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

  const open = async (ctx: AccessContext, name: string, sealed: SealedVersion & KeyIdField): Promise<SecretValue> => ({
    secretId: sealed.secret_id,
    name,
    version: sealed.version,
    value: await openSecretValue(
      keyring,
      { projectId: ctx.projectId, secretName: name, versionId: sealed.version_id },
      { keyId: sealed.key_id, nonce: sealed.nonce, ciphertext: sealed.ciphertext },
    ),
  });

  return {
    async readSecret(ctx, name, version) {
      const res = await call<{ outcome: AccessOutcome } & Partial<SealedVersion & KeyIdField>>(ctx, "read_secret", {
        p_name: name,
        p_version: version ?? null,
      });
      if (res.outcome !== "granted") return { outcome: res.outcome };
      return { outcome: "granted", secret: await open(ctx, name, res as SealedVersion & KeyIdField) };
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
        secrets: await Promise.all(found.map((r) => open(ctx, r.name, r as SealedVersion & KeyIdField))),
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
