import { describe, expect, it } from "vitest";
import {
  clientAddressFrom,
  isValidIpAddress,
  MAX_FORWARDED_FOR_LENGTH,
  MAX_USER_AGENT_LENGTH,
  parseCidr,
} from "./client-ip.ts";

function ipFrom(xff: string | undefined, hops: number): string | null {
  const headers = new Headers();
  if (xff !== undefined) headers.set("x-forwarded-for", xff);
  return clientAddressFrom(headers, hops).ip;
}

describe("clientAddressFrom: choosing the hop", () => {
  it("ignores spoofed entries to the left with one trusted hop", () => {
    expect(ipFrom("6.6.6.6, 203.0.113.9", 1)).toBe("203.0.113.9");
  });

  it("takes the last entry with hops=1 and a single entry", () => {
    expect(ipFrom("198.51.100.7", 1)).toBe("198.51.100.7");
  });

  it("counts N entries from the right with hops=2", () => {
    expect(ipFrom("6.6.6.6, 203.0.113.9, 10.0.0.2", 2)).toBe("203.0.113.9");
  });

  it("gives null when no hop is trusted", () => {
    expect(ipFrom("203.0.113.9", 0)).toBeNull();
  });

  it("gives null for negative or fractional hop counts", () => {
    expect(ipFrom("203.0.113.9", -1)).toBeNull();
    expect(ipFrom("203.0.113.9", 1.5)).toBeNull();
  });

  it("gives null when the chain is shorter than the trusted hops", () => {
    expect(ipFrom("203.0.113.9", 2)).toBeNull();
  });

  it("gives null and no chain when the header is missing", () => {
    const result = clientAddressFrom(new Headers(), 1);
    expect(result).toEqual({ ip: null, forwardedFor: null, userAgent: null });
  });

  it("joins repeated X-Forwarded-For headers and still counts from the right", () => {
    const headers = new Headers();
    headers.append("x-forwarded-for", "6.6.6.6");
    headers.append("x-forwarded-for", "203.0.113.9");
    const result = clientAddressFrom(headers, 1);
    expect(result.ip).toBe("203.0.113.9");
    expect(result.forwardedFor).toBe("6.6.6.6, 203.0.113.9");
  });

  it("trims whitespace around entries", () => {
    expect(ipFrom("  6.6.6.6 ,   203.0.113.9   ", 1)).toBe("203.0.113.9");
  });

  it("gives null when the chosen entry is empty", () => {
    expect(ipFrom("203.0.113.9, ", 1)).toBeNull();
  });
});

describe("clientAddressFrom: validating the chosen entry", () => {
  it.each([
    ["garbage", "not-an-ip"],
    ["SQL", "1.2.3.4'; DROP TABLE audit_log; --"],
    ["SQL in v6 clothing", "::1' OR '1'='1"],
    ["unknown token", "unknown"],
    ["RFC 7239 obfuscated id", "_hidden"],
    ["octet out of range", "256.1.1.1"],
    ["leading zero", "010.1.1.1"],
    ["three octets", "1.2.3"],
    ["zone id", "fe80::1%eth0"],
    ["port out of range", "1.2.3.4:70000"],
    ["bare v6 with port-like suffix and a dotted tail", "::ffff:1.2.3.4:80"],
    ["bracketed v4", "[1.2.3.4]"],
  ])("gives null for %s", (_label, entry) => {
    expect(ipFrom(`203.0.113.9, ${entry}`, 1)).toBeNull();
  });

  it.each([
    ["2001:db8::1", "2001:db8::1"],
    ["::1", "::1"],
    ["::", "::"],
    ["::ffff:192.0.2.1", "::ffff:192.0.2.1"],
    ["2001:DB8:0:0:8:800:200C:417A", "2001:db8:0:0:8:800:200c:417a"],
    ["[::1]", "::1"],
    ["[2001:db8::1]:443", "2001:db8::1"],
    ["192.0.2.1:8080", "192.0.2.1"],
    ["0.0.0.0", "0.0.0.0"],
  ])("accepts %s", (entry, expected) => {
    expect(ipFrom(entry, 1)).toBe(expected);
  });

  it("never throws, whatever the header holds", () => {
    const nasty = ["", ",", ",,,,", "[", "[]", "[::1", "::1]", ":", ":::", "1.2.3.4:", "[::1]:", "\u00ff\u00fe"];
    for (const value of nasty) {
      expect(() => ipFrom(value, 1)).not.toThrow();
      expect(ipFrom(value, 1)).toBeNull();
    }
  });
});

describe("clientAddressFrom: raw chain and user agent", () => {
  it("returns the raw chain and user agent as given", () => {
    const headers = new Headers({ "x-forwarded-for": "6.6.6.6, 203.0.113.9", "user-agent": "meshhook-runner/1.2" });
    expect(clientAddressFrom(headers, 1)).toEqual({
      ip: "203.0.113.9",
      forwardedFor: "6.6.6.6, 203.0.113.9",
      userAgent: "meshhook-runner/1.2",
    });
  });

  it("caps an overlong chain, keeping the trusted right-hand end, and still finds the client", () => {
    const spoofed = Array.from({ length: 500 }, (_, i) => `10.0.${Math.floor(i / 250)}.${i % 250}`).join(", ");
    const headers = new Headers({ "x-forwarded-for": `${spoofed}, 203.0.113.9` });
    const result = clientAddressFrom(headers, 1);
    expect(result.ip).toBe("203.0.113.9");
    expect(result.forwardedFor).not.toBeNull();
    expect(result.forwardedFor!.length).toBeLessThanOrEqual(MAX_FORWARDED_FOR_LENGTH);
    expect(result.forwardedFor!.endsWith(", 203.0.113.9")).toBe(true);
    expect(result.forwardedFor!.startsWith("\u2026")).toBe(true);
  });

  it("caps an overlong user agent", () => {
    const headers = new Headers({ "user-agent": "A".repeat(5000) });
    const result = clientAddressFrom(headers, 1);
    expect(result.userAgent).toBe("A".repeat(MAX_USER_AGENT_LENGTH));
  });

  it("removes control characters from the chain and the user agent", () => {
    const headers = new Headers({
      "x-forwarded-for": "203.0.113.9\u0001\u007f",
      "user-agent": "evil\tagent\u0085\u001b[31m",
    });
    const result = clientAddressFrom(headers, 1);
    expect(result.forwardedFor).toBe("203.0.113.9");
    expect(result.userAgent).toBe("evilagent[31m");
    // The chosen entry itself contained control characters: the chain is the evidence, the ip is null.
    expect(result.ip).toBeNull();
  });
});

describe("isValidIpAddress", () => {
  it.each([
    "1.2.3.4",
    "255.255.255.255",
    "::",
    "::1",
    "1::",
    "1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7::",
    "::2:3:4:5:6:7:8",
    "1:2:3:4:5:6:1.2.3.4",
    "64:ff9b::192.0.2.33",
    "::ffff:1.2.3.4",
    "fe80::abcd:ef01",
  ])("accepts %s", (text) => {
    expect(isValidIpAddress(text)).toBe(true);
  });

  it.each([
    "",
    "1.2.3.4.5",
    "1.2.3.04",
    "1.2.3.-1",
    " 1.2.3.4",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7",
    "1::2::3",
    "1:2:3:4::5:6:7:8",
    "::1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7:8::",
    ":::",
    ":1",
    "1:",
    "12345::1",
    "g::1",
    "1.2.3.4::",
    "::1.2.3.4:1",
    "1:2:3:4:5:6:7:1.2.3.4",
    "fe80::1%25eth0",
    "[::1]",
  ])("rejects %s", (text) => {
    expect(isValidIpAddress(text)).toBe(false);
  });
});

describe("parseCidr", () => {
  it("parses IPv4 and IPv6 ranges", () => {
    expect(parseCidr("10.0.0.0/8")).toEqual({ address: "10.0.0.0", prefix: 8, family: 4 });
    expect(parseCidr("203.0.113.9/32")).toEqual({ address: "203.0.113.9", prefix: 32, family: 4 });
    expect(parseCidr("0.0.0.0/0")).toEqual({ address: "0.0.0.0", prefix: 0, family: 4 });
    expect(parseCidr("2001:DB8::/32")).toEqual({ address: "2001:db8::", prefix: 32, family: 6 });
    expect(parseCidr("::1/128")).toEqual({ address: "::1", prefix: 128, family: 6 });
  });

  it.each(["10.0.0.0/33", "::1/129", "1.2.3/8", "10.0.0.0", "10.0.0.0/", "10.0.0.0/08", "10.0.0.0/8/8", "/8", "10.0.0.0/-1", "10.0.0.0/ 8", "x/8"])(
    "rejects %s",
    (text) => {
      expect(parseCidr(text)).toBeNull();
    },
  );
});
