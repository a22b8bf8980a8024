// Filters ↔ query string: every list screen keeps its filter in the URL, so a link can be shared.

export const PRESETS = ["1d", "3d", "7d", "10d", "30d"] as const;
export type Preset = (typeof PRESETS)[number];
export const RESULTS = ["OK", "FAIL", "UNAUTHORIZED"] as const;
export const CATEGORIES = ["audit", "sign_in", "cobrowse", "contact", "consent", "directory_entry", "campaign_customer", "error_report"] as const;

export interface ActivityFilter {
  period: Preset | "custom";
  from: string; // datetime-local value, only with period=custom
  to: string;
  action: string[];
  user: string;
  result: string;
  category: string[];
  q: string;
}

export const DEFAULT_ACTIVITY: ActivityFilter = { period: "10d", from: "", to: "", action: [], user: "", result: "", category: [], q: "" };

export function activityFromQuery(search: string): ActivityFilter {
  const p = new URLSearchParams(search);
  const period = p.get("period");
  return {
    period: period === "custom" || (PRESETS as readonly string[]).includes(period ?? "") ? (period as ActivityFilter["period"]) : "10d",
    from: p.get("from") ?? "",
    to: p.get("to") ?? "",
    action: p.getAll("action").filter(Boolean),
    user: p.get("user") ?? "",
    result: (RESULTS as readonly string[]).includes(p.get("result") ?? "") ? (p.get("result") as string) : "",
    category: p.getAll("category").filter((c) => (CATEGORIES as readonly string[]).includes(c)),
    q: p.get("q") ?? "",
  };
}

/** The URL query of a filter: defaults are left out, so the plain URL is the default view. */
export function activityToQuery(f: ActivityFilter): string {
  const p = new URLSearchParams();
  if (f.period !== "10d") p.set("period", f.period);
  if (f.period === "custom") {
    if (f.from) p.set("from", f.from);
    if (f.to) p.set("to", f.to);
  }
  for (const a of f.action) p.append("action", a);
  if (f.user) p.set("user", f.user);
  if (f.result) p.set("result", f.result);
  for (const c of f.category) p.append("category", c);
  if (f.q) p.set("q", f.q);
  return p.toString();
}

/** Whether anything narrows the list beyond the time period. */
export function isNarrowed(f: ActivityFilter): boolean {
  return f.action.length > 0 || !!f.user || !!f.result || f.category.length > 0 || !!f.q;
}

const DAY = 86_400_000;

/** The absolute window of a filter, as RFC 3339 instants for the API. */
export function windowOf(f: { period: string; from: string; to: string }, now: Date = new Date()): { from: string; to: string } {
  if (f.period === "custom") {
    const from = f.from ? new Date(f.from) : new Date(now.getTime() - 10 * DAY);
    const to = f.to ? new Date(f.to) : now;
    return { from: from.toISOString(), to: to.toISOString() };
  }
  const days = Number.parseInt(f.period, 10) || 10;
  return { from: new Date(now.getTime() - days * DAY).toISOString(), to: now.toISOString() };
}

/** The API query of an activity filter (`GET /v1/events`). */
export function activityApiQuery(f: ActivityFilter, tz: string, now?: Date) {
  const w = windowOf(f, now);
  return {
    from: w.from,
    to: w.to,
    action: f.action.length ? f.action : undefined,
    category: f.category.length ? (f.category as (typeof CATEGORIES)[number][]) : undefined,
    user: f.user || undefined,
    result: (f.result || undefined) as (typeof RESULTS)[number] | undefined,
    q: f.q || undefined,
    tz,
  };
}

export interface SignInFilter {
  period: "1d" | "3d" | "7d" | "custom";
  from: string;
  to: string;
  account: string;
  employee_id: string;
}

export const DEFAULT_SIGNIN: SignInFilter = { period: "1d", from: "", to: "", account: "", employee_id: "" };

export function signInFromQuery(search: string): SignInFilter {
  const p = new URLSearchParams(search);
  const period = p.get("period");
  return {
    period: ["1d", "3d", "7d", "custom"].includes(period ?? "") ? (period as SignInFilter["period"]) : "1d",
    from: p.get("from") ?? "",
    to: p.get("to") ?? "",
    account: p.get("account") ?? "",
    employee_id: p.get("employee_id") ?? "",
  };
}

export function signInToQuery(f: SignInFilter): string {
  const p = new URLSearchParams();
  if (f.period !== "1d") p.set("period", f.period);
  if (f.period === "custom") {
    if (f.from) p.set("from", f.from);
    if (f.to) p.set("to", f.to);
  }
  if (f.account) p.set("account", f.account);
  if (f.employee_id) p.set("employee_id", f.employee_id);
  return p.toString();
}

/** The error-report list's filter (seed 000): a period, the agent's username, a team. */
export interface ErrorReportFilter {
  period: Preset;
  agent: string;
  team: string;
}

export const DEFAULT_ERROR_REPORTS: ErrorReportFilter = { period: "7d", agent: "", team: "" };

export function errorReportsFromQuery(search: string): ErrorReportFilter {
  const p = new URLSearchParams(search);
  const period = p.get("period") ?? "";
  return {
    period: (PRESETS as readonly string[]).includes(period) ? (period as Preset) : DEFAULT_ERROR_REPORTS.period,
    agent: p.get("agent")?.trim() ?? "",
    team: p.get("team")?.trim() ?? "",
  };
}

export function errorReportsToQuery(f: ErrorReportFilter): string {
  const p = new URLSearchParams();
  if (f.period !== DEFAULT_ERROR_REPORTS.period) p.set("period", f.period);
  if (f.agent.trim()) p.set("agent", f.agent.trim());
  if (f.team.trim()) p.set("team", f.team.trim());
  const s = p.toString();
  return s ? `?${s}` : "";
}
