// Caller identity from a verified JWT only (law 5). Supabase signs access tokens with an
// asymmetric key published at its JWKS endpoint (ES256, or RS256); projects that still use the
// legacy shared secret can enable HS256 explicitly. The algorithm decides the key source, and
// each source accepts only its own algorithms, so a token cannot pick its verification key type
// (no "alg: none", no HS256 signed with a public key).
import type { MiddlewareHandler } from "hono";
import {
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyOptions,
} from "jose";
import { ApiError } from "./errors.ts";

export interface VerifiedCaller {
  sub: string;
  role: string | undefined;
  actorType: "user" | "service";
  claims: Record<string, unknown>;
  token: string;
}

export interface JwtVerifierOptions {
  jwksUrl: string;
  issuer: string;
  audience: string;
  /** Legacy shared secret. HS256 tokens are rejected unless this is a non-empty string. */
  hs256Secret?: string;
  /** Used for JWKS requests; defaults to the global fetch. */
  fetchImpl?: typeof fetch;
  /** How long a fetched key set is trusted before it is fetched again. Default 10 minutes. */
  jwksCacheMaxAgeMs?: number;
  /** Minimum time between refetches triggered by an unknown `kid`. Default 30 seconds. */
  jwksCooldownMs?: number;
  /** Abort a JWKS request after this long. Default 5 seconds. */
  jwksTimeoutMs?: number;
  /** Allowed clock skew for exp/nbf/iat. Default 5 seconds. */
  clockToleranceSec?: number;
}

export type CallerVariables = { caller: VerifiedCaller };

export type JwtVerifier = (token: string) => Promise<VerifiedCaller>;

const JWKS_ALGORITHMS = ["ES256", "RS256"];
const SHARED_SECRET_ALGORITHM = "HS256";
const MIN_HS256_SECRET_LENGTH = 32;
// Far above any real Supabase access token; keeps parsing work bounded.
const MAX_TOKEN_LENGTH = 8192;
const MAX_SUB_LENGTH = 255;

const DEFAULT_JWKS_CACHE_MAX_AGE_MS = 10 * 60 * 1000;
const DEFAULT_JWKS_COOLDOWN_MS = 30 * 1000;
const DEFAULT_JWKS_TIMEOUT_MS = 5 * 1000;
const DEFAULT_CLOCK_TOLERANCE_SEC = 5;

function unauthorized(reason: string): ApiError {
  return new ApiError(401, "unauthorized", reason);
}

/**
 * Failure to obtain a usable key set (network error, timeout, non-200, body that is not a JWKS)
 * is reported as 503 `auth_unavailable`, not 401: the token was never judged, so the caller
 * should retry with the same token rather than discard it or re-authenticate.
 */
class JwksUnavailableError extends Error {
  override readonly name = "JwksUnavailableError";
}

function authUnavailable(): ApiError {
  return new ApiError(503, "auth_unavailable", "Token verification is temporarily unavailable");
}

type JwksFetch = (
  url: string,
  init: { headers: Headers; method: "GET"; redirect: "manual"; signal: AbortSignal },
) => Promise<Response>;

// Wraps fetch so every way the key set can be unavailable surfaces as JwksUnavailableError,
// whatever jose would have made of it.
function jwksFetchFrom(fetchImpl: typeof fetch | undefined): JwksFetch {
  return async (url, init) => {
    let response: Response;
    let body: string;
    try {
      response = await (fetchImpl ?? fetch)(url, init);
      body = await response.text();
    } catch {
      throw new JwksUnavailableError("JWKS request failed");
    }
    if (response.status !== 200) throw new JwksUnavailableError("JWKS endpoint did not answer 200");
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      throw new JwksUnavailableError("JWKS response is not JSON");
    }
    const keys = (parsed as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys)) throw new JwksUnavailableError("JWKS response has no keys array");
    return new Response(body, { status: 200, headers: { "content-type": "application/json" } });
  };
}

function reasonFor(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof JwksUnavailableError) return authUnavailable();
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) return authUnavailable();
  if (err instanceof joseErrors.JWTExpired) return unauthorized("Token has expired");
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    // `claim` is the claim's name (set by jose from a fixed list), never its value.
    return unauthorized(`Token claim "${err.claim}" is invalid`);
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return unauthorized("Token algorithm is not allowed");
  if (err instanceof joseErrors.JWKSNoMatchingKey) return unauthorized("Token signing key is unknown");
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return unauthorized("Token signature is invalid");
  if (err instanceof joseErrors.JWTInvalid || err instanceof joseErrors.JWSInvalid) {
    return unauthorized("Token is malformed");
  }
  return unauthorized("Token is invalid");
}

export function createJwtVerifier(opts: JwtVerifierOptions): JwtVerifier {
  // Configuration mistakes fail at construction, not per request.
  const jwksUrl = new URL(opts.jwksUrl);
  if (!opts.issuer) throw new TypeError("JWT verifier needs an issuer");
  if (!opts.audience) throw new TypeError("JWT verifier needs an audience");
  const hs256Key = opts.hs256Secret ? new TextEncoder().encode(opts.hs256Secret) : undefined;
  if (hs256Key !== undefined && hs256Key.length < MIN_HS256_SECRET_LENGTH) {
    throw new TypeError(`HS256 secret must be at least ${MIN_HS256_SECRET_LENGTH} bytes`);
  }

  const jwks = createRemoteJWKSet(jwksUrl, {
    cacheMaxAge: opts.jwksCacheMaxAgeMs ?? DEFAULT_JWKS_CACHE_MAX_AGE_MS,
    cooldownDuration: opts.jwksCooldownMs ?? DEFAULT_JWKS_COOLDOWN_MS,
    timeoutDuration: opts.jwksTimeoutMs ?? DEFAULT_JWKS_TIMEOUT_MS,
    [customFetch]: jwksFetchFrom(opts.fetchImpl),
  });

  const clockToleranceSec = opts.clockToleranceSec ?? DEFAULT_CLOCK_TOLERANCE_SEC;
  const commonOptions: JWTVerifyOptions = {
    issuer: opts.issuer,
    audience: opts.audience,
    requiredClaims: ["exp", "sub"],
    clockTolerance: clockToleranceSec,
  };

  return async function verifyJwt(token: string): Promise<VerifiedCaller> {
    if (typeof token !== "string" || token.length === 0) throw unauthorized("Token is missing");
    if (token.length > MAX_TOKEN_LENGTH) throw unauthorized("Token is too long");

    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw unauthorized("Token is malformed");
    }

    let payload: JWTPayload;
    try {
      if (alg === SHARED_SECRET_ALGORITHM) {
        if (hs256Key === undefined) throw unauthorized("Token algorithm is not allowed");
        ({ payload } = await jwtVerify(token, hs256Key, {
          ...commonOptions,
          algorithms: [SHARED_SECRET_ALGORITHM],
        }));
      } else if (typeof alg === "string" && JWKS_ALGORITHMS.includes(alg)) {
        ({ payload } = await jwtVerify(token, jwks, { ...commonOptions, algorithms: JWKS_ALGORITHMS }));
      } else {
        // Includes "none" and every algorithm we do not expect from Supabase.
        throw unauthorized("Token algorithm is not allowed");
      }
    } catch (err) {
      throw reasonFor(err);
    }

    const { sub } = payload;
    if (typeof sub !== "string" || sub.length === 0 || sub.length > MAX_SUB_LENGTH) {
      throw unauthorized('Token claim "sub" is invalid');
    }
    if (typeof payload.exp !== "number") throw unauthorized('Token claim "exp" is invalid');
    // jose checks iat only when a maximum age is set; a token issued in the future is forged or
    // comes from a badly skewed issuer either way.
    if (payload.iat !== undefined && (typeof payload.iat !== "number" || payload.iat > Date.now() / 1000 + clockToleranceSec)) {
      throw unauthorized('Token claim "iat" is invalid');
    }

    const claims = payload as Record<string, unknown>;
    const appMetadata = claims.app_metadata;
    const actorType =
      appMetadata !== null &&
      typeof appMetadata === "object" &&
      (appMetadata as Record<string, unknown>).actor_type === "service"
        ? "service"
        : "user";
    return {
      sub,
      role: typeof claims.role === "string" ? claims.role : undefined,
      actorType,
      claims,
      token,
    };
  };
}

// RFC 6750 b64token after the case-insensitive "Bearer" scheme.
const BEARER_CREDENTIALS = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

/** The token from an `Authorization: Bearer <token>` header; ApiError 401 otherwise. */
export function bearerToken(authorizationHeader: string | undefined): string {
  if (authorizationHeader === undefined || authorizationHeader === "") {
    throw unauthorized("Missing bearer token");
  }
  const match = BEARER_CREDENTIALS.exec(authorizationHeader.trim());
  if (!match) throw unauthorized("Authorization header is not a bearer token");
  return match[1];
}

/**
 * Hono middleware: verifies the bearer token and sets `c.get('caller')`.
 * Every 401 carries the same message so responses do not tell a prober which check failed;
 * a 503 (key set unavailable) passes through so the caller retries.
 */
export function requireCaller(verify: JwtVerifier): MiddlewareHandler<{ Variables: CallerVariables }> {
  return async (c, next) => {
    let caller: VerifiedCaller;
    try {
      caller = await verify(bearerToken(c.req.header("authorization")));
    } catch (err) {
      if (err instanceof ApiError && err.status === 503) throw err;
      throw new ApiError(401, "unauthorized", "Missing or invalid bearer token");
    }
    c.set("caller", caller);
    await next();
  };
}
