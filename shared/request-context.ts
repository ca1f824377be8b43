// Per-request audit context: a request id and the advisory client address. Set before auth so
// every response, errors included, carries the request id.
import type { MiddlewareHandler } from "hono";
import { clientAddressFrom } from "./client-ip.ts";

/** What an audit row records about the request besides the verified identity. */
export interface AuditRequestContext {
  request_id: string;
  ip: string | null;
  forwarded_for: string | null;
  user_agent: string | null;
}

export type RequestContextVariables = { audit: AuditRequestContext };

// Caller-supplied ids are kept for correlation only when they are short and plain.
const ACCEPTABLE_REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

export function requestContext(trustedProxyHops: number): MiddlewareHandler<{ Variables: RequestContextVariables }> {
  return async (c, next) => {
    const offered = c.req.header("x-request-id");
    const requestId = offered && ACCEPTABLE_REQUEST_ID.test(offered) ? offered : crypto.randomUUID();
    const address = clientAddressFrom(c.req.raw.headers, trustedProxyHops);
    c.set("audit", {
      request_id: requestId,
      ip: address.ip,
      forwarded_for: address.forwardedFor,
      user_agent: address.userAgent,
    });
    c.header("x-request-id", requestId);
    await next();
  };
}
