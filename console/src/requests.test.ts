import { describe, expect, it } from "vitest";
import { requestsFromSearch, requestsToSearch, REQUESTS_DEFAULT } from "./requests";

describe("requests screen query string", () => {
  it("keeps only what differs from the defaults", () => {
    expect(requestsToSearch(REQUESTS_DEFAULT)).toBe("");
    expect(requestsToSearch({ ...REQUESTS_DEFAULT, minDelayMs: 5000 })).toBe("?min_delay_ms=5000");
    expect(requestsToSearch({ ...REQUESTS_DEFAULT, kind: "unfinished", unfinishedFor: "1h" })).toBe("?kind=unfinished&unfinished_for=1h");
  });
  it("round-trips every kind", () => {
    for (const q of [{ ...REQUESTS_DEFAULT, minDelayMs: 0 }, { kind: "unfinished", minDelayMs: 1000, unfinishedFor: "30s" }] as const)
      expect(requestsFromSearch(requestsToSearch(q))).toEqual(q);
  });
  it("falls back to the defaults on nonsense", () => {
    expect(requestsFromSearch("?kind=evil&min_delay_ms=-4")).toEqual(REQUESTS_DEFAULT);
    expect(requestsFromSearch("?min_delay_ms=1.5")).toEqual(REQUESTS_DEFAULT);
  });
});
