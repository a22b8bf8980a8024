// The Requests screen's filter <-> query string (kept apart from the screen so it is testable without a browser).

export interface RequestsQuery {
  kind: "slow" | "unfinished";
  minDelayMs: number;
  unfinishedFor: string;
}

export const REQUESTS_DEFAULT: RequestsQuery = { kind: "slow", minDelayMs: 1000, unfinishedFor: "10m" };

/** The screen's query string (only what differs from the defaults) and back. */
export function requestsToSearch(q: RequestsQuery): string {
  const p = new URLSearchParams();
  if (q.kind !== REQUESTS_DEFAULT.kind) p.set("kind", q.kind);
  if (q.kind === "slow" && q.minDelayMs !== REQUESTS_DEFAULT.minDelayMs) p.set("min_delay_ms", String(q.minDelayMs));
  if (q.kind === "unfinished" && q.unfinishedFor !== REQUESTS_DEFAULT.unfinishedFor) p.set("unfinished_for", q.unfinishedFor);
  const s = p.toString();
  return s ? `?${s}` : "";
}

export function requestsFromSearch(search: string): RequestsQuery {
  const p = new URLSearchParams(search);
  const ms = Number(p.get("min_delay_ms"));
  return {
    kind: p.get("kind") === "unfinished" ? "unfinished" : "slow",
    minDelayMs: Number.isInteger(ms) && ms >= 0 && p.has("min_delay_ms") ? ms : REQUESTS_DEFAULT.minDelayMs,
    unfinishedFor: p.get("unfinished_for") || REQUESTS_DEFAULT.unfinishedFor,
  };
}
