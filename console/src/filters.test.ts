import { describe, expect, it } from "vitest";
import { activityFromQuery, activityToQuery, activityApiQuery, DEFAULT_ACTIVITY, isNarrowed, signInFromQuery, signInToQuery, windowOf, errorReportsFromQuery, errorReportsToQuery, DEFAULT_ERROR_REPORTS, type ActivityFilter } from "./filters";

describe("activity filter ↔ query string", () => {
  it("the plain URL is the default view: last 10 days, nothing narrowed", () => {
    expect(activityFromQuery("")).toEqual(DEFAULT_ACTIVITY);
    expect(activityToQuery(DEFAULT_ACTIVITY)).toBe("");
    expect(isNarrowed(DEFAULT_ACTIVITY)).toBe(false);
  });
  it("round-trips every filter, with repeated activities and categories", () => {
    const f: ActivityFilter = { period: "custom", from: "2026-11-01T08:00", to: "2026-11-02T18:30", action: ["LOGIN", "CALL_DELETE"], user: "jana.novak", result: "FAIL", category: ["audit"], q: "invoice 42" };
    const q = activityToQuery(f);
    expect(q).toContain("action=LOGIN&action=CALL_DELETE");
    expect(activityFromQuery(`?${q}`)).toEqual(f);
    expect(isNarrowed(f)).toBe(true);
  });
  it("drops values the API would reject", () => {
    const f = activityFromQuery("?period=99d&result=MAYBE&category=nope&category=audit");
    expect(f.period).toBe("10d");
    expect(f.result).toBe("");
    expect(f.category).toEqual(["audit"]);
  });
  it("custom dates are kept only with the custom period", () => {
    expect(activityToQuery({ ...DEFAULT_ACTIVITY, period: "3d", from: "2026-01-01T00:00" })).toBe("period=3d");
  });
  it("maps presets to an absolute window for the API", () => {
    const now = new Date("2026-12-03T10:00:00Z");
    expect(windowOf({ period: "7d", from: "", to: "" }, now)).toEqual({ from: "2026-11-26T10:00:00.000Z", to: "2026-12-03T10:00:00.000Z" });
    const api = activityApiQuery({ ...DEFAULT_ACTIVITY, user: "x" }, "Asia/Tokyo", now);
    expect(api).toMatchObject({ from: "2026-11-23T10:00:00.000Z", user: "x", tz: "Asia/Tokyo", action: undefined, q: undefined });
  });
});

describe("sign-in filter ↔ query string", () => {
  it("defaults to 1 Day and round-trips account and employee ID", () => {
    expect(signInFromQuery("").period).toBe("1d");
    const f = { period: "7d" as const, from: "", to: "", account: "agent007", employee_id: "1001" };
    expect(signInFromQuery(`?${signInToQuery(f)}`)).toEqual(f);
    expect(signInToQuery({ ...f, account: "", employee_id: "", period: "1d" })).toBe("");
  });
});

describe("error-report filter <-> query string", () => {
  it("round-trips and keeps only what differs from the defaults", () => {
    expect(errorReportsToQuery(DEFAULT_ERROR_REPORTS)).toBe("");
    const f = { period: "30d", agent: "li.wei", team: "Support EMEA" } as const;
    expect(errorReportsToQuery(f)).toBe("?period=30d&agent=li.wei&team=Support+EMEA");
    expect(errorReportsFromQuery(errorReportsToQuery(f))).toEqual(f);
  });
  it("ignores an unknown period", () => {
    expect(errorReportsFromQuery("?period=1y").period).toBe("7d");
  });
});
