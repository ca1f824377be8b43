// Callers of audit-archive (pg_cron through pg_net, an operator) present a shared secret as a
// bearer token; it is not a JWT. Both sides are hashed first, so the comparison takes the same time
// whatever the input's length or its first differing byte.
import type { MiddlewareHandler } from "hono";
import { ApiError } from "../../shared/errors.ts";

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

export async function constantTimeEqual(presented: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([digest(presented), digest(expected)]);
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i] ^ b[i];
  return difference === 0;
}

const BEARER = /^Bearer ([^\s]{1,1024})$/i;

export function requireArchiveKey(expected: string): MiddlewareHandler {
  return async (c, next) => {
    const match = BEARER.exec(c.req.header("authorization") ?? "");
    if (!match || !(await constantTimeEqual(match[1], expected))) {
      throw new ApiError(401, "unauthorized", "A valid archive key is required (Authorization: Bearer <AUDIT_ARCHIVE_KEY>)");
    }
    await next();
  };
}
