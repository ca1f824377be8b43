// Client address from forwarding headers. The result is advisory audit context (law 5): it is
// stored beside the raw chain and never used for authorization. Nothing here throws on input.

export interface ClientAddress {
  /** The address the outermost trusted proxy saw, or null when it cannot be determined. */
  ip: string | null;
  /** The raw X-Forwarded-For chain, control characters removed, capped. */
  forwardedFor: string | null;
  /** The raw User-Agent, control characters removed, capped. */
  userAgent: string | null;
}

export const MAX_FORWARDED_FOR_LENGTH = 1024;
export const MAX_USER_AGENT_LENGTH = 512;

// C0 controls, DEL and C1 controls. Header values reach us as Latin-1 byte strings, so this
// covers every control character a header can carry (no log-line or terminal injection).
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/g;

const TRUNCATION_MARK = "\u2026";

function withoutControlCharacters(value: string): string {
  return value.replace(CONTROL_CHARACTERS, "").trim();
}

/**
 * Picks the client address out of X-Forwarded-For.
 *
 * Each trusted proxy appends the address it received the connection from, so with N trusted
 * hops the client is the N-th entry counted from the right. Entries further left were supplied
 * by the client and may be spoofed; they are ignored. hops = 0 means no proxy is trusted.
 */
export function clientAddressFrom(headers: Headers, trustedProxyHops: number): ClientAddress {
  const rawChain = headers.get("x-forwarded-for");
  const rawUserAgent = headers.get("user-agent");
  return {
    ip: rawChain === null ? null : addressAtHopFromRight(rawChain, trustedProxyHops),
    forwardedFor: rawChain === null ? null : cappedForwardedFor(rawChain),
    userAgent: rawUserAgent === null ? null : cappedUserAgent(rawUserAgent),
  };
}

function addressAtHopFromRight(chain: string, hops: number): string | null {
  if (!Number.isSafeInteger(hops) || hops <= 0) return null;
  // The full chain is parsed (not the capped copy): a long spoofed prefix must not push the
  // trusted right-hand entries out of reach.
  const entries = chain.split(",");
  if (entries.length < hops) return null;
  return addressFromEntry(entries[entries.length - hops].trim());
}

// The stored chain keeps its right-hand end, which is the part written by trusted proxies;
// a cut is marked with a leading ellipsis.
function cappedForwardedFor(raw: string): string | null {
  const clean = withoutControlCharacters(raw);
  if (clean === "") return null;
  if (clean.length <= MAX_FORWARDED_FOR_LENGTH) return clean;
  return TRUNCATION_MARK + clean.slice(clean.length - (MAX_FORWARDED_FOR_LENGTH - 1));
}

function cappedUserAgent(raw: string): string | null {
  const clean = withoutControlCharacters(raw);
  if (clean === "") return null;
  return clean.length <= MAX_USER_AGENT_LENGTH ? clean : clean.slice(0, MAX_USER_AGENT_LENGTH);
}

const BRACKETED_IPV6_WITH_OPTIONAL_PORT = /^\[([^\]]+)\](?::(\d{1,5}))?$/;
const IPV4_WITH_PORT = /^([0-9.]+):(\d{1,5})$/;

/** One XFF entry → a validated address (port and IPv6 brackets stripped), or null. */
function addressFromEntry(entry: string): string | null {
  const bracketed = BRACKETED_IPV6_WITH_OPTIONAL_PORT.exec(entry);
  if (bracketed) {
    const [, address, port] = bracketed;
    if (port !== undefined && !isValidPort(port)) return null;
    return isValidIpv6(address) ? address.toLowerCase() : null;
  }
  const v4WithPort = IPV4_WITH_PORT.exec(entry);
  if (v4WithPort) {
    const [, address, port] = v4WithPort;
    return isValidPort(port) && isValidIpv4(address) ? address : null;
  }
  if (isValidIpv4(entry)) return entry;
  // A bare IPv6 address cannot carry a port unambiguously, so none is stripped.
  if (isValidIpv6(entry)) return entry.toLowerCase();
  return null;
}

function isValidPort(port: string): boolean {
  const value = Number(port);
  return value >= 0 && value <= 65535;
}

// One decimal octet 0-255 without leading zeros ("0" yes, "01" no: some parsers read octal).
const IPV4_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9][0-9]|[0-9])";
const IPV4 = new RegExp(`^${IPV4_OCTET}(?:\\.${IPV4_OCTET}){3}$`);
const IPV6_HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;
const MAX_IPV6_TEXT_LENGTH = 45; // "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"

export function isValidIpv4(text: string): boolean {
  return IPV4.test(text);
}

/** RFC 4291 §2.2 text forms: full, "::"-compressed, and with a trailing dotted IPv4. No zone ids. */
export function isValidIpv6(text: string): boolean {
  if (text.length < 2 || text.length > MAX_IPV6_TEXT_LENGTH) return false;
  const halves = text.split("::");
  if (halves.length > 2) return false;
  const compressed = halves.length === 2;
  const groupsOf = (part: string): string[] => (part === "" ? [] : part.split(":"));
  const head = groupsOf(halves[0]);
  const tail = compressed ? groupsOf(halves[1]) : [];
  const groups = compressed ? [...head, ...tail] : head;
  // A dotted IPv4 part may only end the address, i.e. not sit before a trailing "::".
  const lastGroupMayBeIpv4 = !compressed || tail.length > 0;

  let sixteenBitGroups = 0;
  for (let index = 0; index < groups.length; index++) {
    const group = groups[index];
    const isLast = index === groups.length - 1;
    if (IPV6_HEX_GROUP.test(group)) {
      sixteenBitGroups += 1;
    } else if (isLast && lastGroupMayBeIpv4 && isValidIpv4(group)) {
      sixteenBitGroups += 2;
    } else {
      return false;
    }
  }
  // "::" stands for one or more zero groups.
  return compressed ? sixteenBitGroups <= 7 : sixteenBitGroups === 8;
}

export function isValidIpAddress(text: string): boolean {
  return typeof text === "string" && (isValidIpv4(text) || isValidIpv6(text));
}

export interface ParsedCidr {
  address: string;
  prefix: number;
  family: 4 | 6;
}

const PREFIX_LENGTH = /^(?:0|[1-9][0-9]{0,2})$/;

/**
 * Parses "address/prefix" (e.g. "10.0.0.0/8", "2001:db8::/32"). Host bits may be set
 * ("10.1.2.3/8" is accepted, as Postgres `inet` accepts it). Returns null for anything else.
 */
export function parseCidr(text: string): ParsedCidr | null {
  if (typeof text !== "string") return null;
  const parts = text.split("/");
  if (parts.length !== 2) return null;
  const [address, prefixText] = parts;
  if (!PREFIX_LENGTH.test(prefixText)) return null;
  const prefix = Number(prefixText);
  if (isValidIpv4(address)) return prefix <= 32 ? { address, prefix, family: 4 } : null;
  if (isValidIpv6(address)) {
    return prefix <= 128 ? { address: address.toLowerCase(), prefix, family: 6 } : null;
  }
  return null;
}
