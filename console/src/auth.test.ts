import { describe, expect, it } from "vitest";
import { insecureOk, restoreSession, type Session } from "./auth";

/** A Storage with only what restoring needs. */
function store(entries: Record<string, string>) {
  const m = new Map(Object.entries(entries));
  return { getItem: (k: string) => m.get(k) ?? null, removeItem: (k: string) => void m.delete(k), has: (k: string) => m.has(k) };
}

const now = 1_800_000_000_000;
const live: Session = { token: "a.b.c", expiresAt: now + 60_000, tenant: "acme", user: "ann", roles: ["compliance_analyst"] };

describe("a session kept in the tab", () => {
  it("survives a reload while it has time left", () => {
    expect(restoreSession(store({ "auditrail.session": JSON.stringify(live) }), now)).toEqual(live);
  });
  it("is dropped when it expires within 10 s, and forgotten", () => {
    const s = store({ "auditrail.session": JSON.stringify({ ...live, expiresAt: now + 5_000 }) });
    expect(restoreSession(s, now)).toBeNull();
    expect(s.has("auditrail.session")).toBe(false);
  });
  it("is dropped when unreadable or not a session", () => {
    expect(restoreSession(store({ "auditrail.session": "{not json" }), now)).toBeNull();
    expect(restoreSession(store({ "auditrail.session": JSON.stringify({ token: 7 }) }), now)).toBeNull();
    expect(restoreSession(store({}), now)).toBeNull();
    expect(restoreSession(undefined, now)).toBeNull();
  });
});

describe("the issuer's scheme", () => {
  it("may be plain HTTP only on a loopback address", () => {
    expect(insecureOk(new URL("http://127.0.0.1:9000"))).toBe(true);
    expect(insecureOk(new URL("http://localhost:9000/realms/x"))).toBe(true);
    expect(insecureOk(new URL("http://id.example.com"))).toBe(false);
    expect(insecureOk(new URL("http://127.0.0.1.example.com"))).toBe(false);
    expect(insecureOk(new URL("https://id.example.com"))).toBe(false);
  });
});
