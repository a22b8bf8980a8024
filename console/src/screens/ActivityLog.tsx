// Seed 004's audit log: filters in the query string, virtualised rows, endless scroll over next_cursor.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { useVirtualizer } from "@tanstack/react-virtual";
import { t, lang } from "../i18n";
import { api, ok, type Record_, type CatalogueEntry } from "../api/client";
import { activityFromQuery, activityToQuery, activityApiQuery, isNarrowed, DEFAULT_ACTIVITY, RESULTS, CATEGORIES, type ActivityFilter } from "../filters";
import { navigate, linkClick } from "../router";
import { zone, formatTime } from "../zone";
import { ErrorBox, PeriodFields, ZonePicker } from "./common";
import { ActivityPicker } from "./ActivityPicker";
import { ExportDialog } from "./ExportDialog";
import { seen } from "../records";

const PERIODS = [
  ["1d", "period.1d"],
  ["3d", "period.3d"],
  ["7d", "period.7d"],
  ["10d", "period.10d"],
  ["30d", "period.30d"],
  ["custom", "period.custom"],
] as const;

export function describe(d: unknown): { short: string; long: boolean; full: string } {
  if (d === undefined || d === null) return { short: "", long: false, full: "" };
  const full = typeof d === "string" ? d : JSON.stringify(d, null, 2);
  const long = typeof d !== "string" || full.length > 80;
  const flat = typeof d === "string" ? d : JSON.stringify(d);
  return { short: flat.length > 80 ? `${flat.slice(0, 77)}…` : flat, long, full };
}

export function ActivityLog({ search }: { search: string }) {
  const filter = useMemo(() => activityFromQuery(search), [search]);
  const [draft, setDraft] = useState<ActivityFilter>(filter);
  const [rows, setRows] = useState<Record_[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  // On DynamoDB a page of a rare text or filter may end short on the store's read budget: how far
  // back the window is searched so far, and how many such pages were fetched without a scroll.
  const [searched, setSearched] = useState<string | null>(null);
  const autoPages = useRef(0);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [panel, setPanel] = useState<Record_ | null>(null);
  const [catalogue, setCatalogue] = useState<CatalogueEntry[]>([]);
  const [exporting, setExporting] = useState(false);
  const [stamp, setStamp] = useState(0);
  const gen = useRef(0);
  // The query of the list now shown, its relative period ("last 10 days") resolved once, when the
  // list starts: every next page must ask for the same window, or its cursor (bound to the
  // filter) is refused.
  const listQuery = useRef(activityApiQuery(filter, zone.value));
  const tz = zone.value;

  useEffect(() => setDraft(filter), [filter]);
  useEffect(() => {
    api.GET("/v1/catalogue").then((r) => setCatalogue(ok(r).actions)).catch(setError);
  }, []);
  const names = useMemo(() => new Map(catalogue.map((c) => [c.name, c.label])), [catalogue]);

  async function load(after: string | null) {
    const g = after ? gen.current : ++gen.current;
    setLoading(true);
    setError(null);
    try {
      if (!after) listQuery.current = activityApiQuery(filter, tz);
      const query = { ...listQuery.current, limit: 100, cursor: after ?? undefined };
      const page = ok(await api.GET("/v1/events", { params: { query } }));
      if (g !== gen.current) return;
      for (const r of page.items) seen.set(r.id, r);
      setRows((old) => (after ? [...old, ...page.items] : page.items));
      setCursor(page.next_cursor ?? null);
      setSearched(page.next_cursor ? (page.searched_until ?? null) : null);
    } catch (e) {
      if (g === gen.current) setError(e);
    } finally {
      if (g === gen.current) setLoading(false);
    }
  }
  useEffect(() => {
    setRows([]);
    setCursor(null);
    setSearched(null);
    autoPages.current = 0;
    void load(null);
  }, [search, tz, stamp]);

  const scroller = useRef<HTMLDivElement>(null);
  const virt = useVirtualizer({ count: rows.length, getScrollElement: () => scroller.current, estimateSize: () => 40, overscan: 10 });
  const items = virt.getVirtualItems();
  const last = items[items.length - 1];
  useEffect(() => {
    // After a failure the list waits for the user (Refresh), instead of asking again and again.
    if (!cursor || loading || error) return;
    if (last && last.index >= rows.length - 20) {
      void load(cursor);
    } else if (rows.length < 20 && autoPages.current < 5) {
      // Short pages (a rare match searched within the read budget): a few more on their own,
      // then the "Search further" button, so an idle screen does not read the whole window.
      autoPages.current += 1;
      void load(cursor);
    }
  }, [last?.index, cursor, loading, error, rows.length]);

  const apply = (f: ActivityFilter) => {
    const q = activityToQuery(f);
    navigate(`/activity${q ? `?${q}` : ""}`);
  };
  const locale = lang.value;

  return (
    <section class="screen">
      <h1>{t("nav.activity")}</h1>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          apply(draft);
        }}
      >
        <PeriodFields
          periods={PERIODS}
          value={draft.period}
          onPeriod={(period) => apply({ ...draft, period })}
          from={draft.from}
          to={draft.to}
          onRange={(from, to) => setDraft({ ...draft, from, to })}
        />
        <ActivityPicker catalogue={catalogue} value={draft.action} onChange={(action) => apply({ ...draft, action })} />
        <label class="field">
          {t("filter.user")}
          <input name="user" value={draft.user} onInput={(e) => setDraft({ ...draft, user: e.currentTarget.value })} />
        </label>
        <label class="field">
          {t("filter.result")}
          <select name="result" value={draft.result} onChange={(e) => apply({ ...draft, result: e.currentTarget.value })}>
            <option value="">{t("filter.any")}</option>
            {RESULTS.map((r) => (
              <option key={r} value={r}>
                {t(`result.${r}`)}
              </option>
            ))}
          </select>
        </label>
        <label class="field">
          {t("filter.category")}
          <select name="category" value={draft.category[0] ?? ""} onChange={(e) => apply({ ...draft, category: e.currentTarget.value ? [e.currentTarget.value] : [] })}>
            <option value="">{t("filter.any")}</option>
            {CATEGORIES.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        </label>
        <label class="field">
          {t("filter.q")}
          <input name="q" type="search" value={draft.q} onInput={(e) => setDraft({ ...draft, q: e.currentTarget.value })} />
        </label>
        <div class="buttons">
          <button type="submit" class="primary">
            {t("filter.apply")}
          </button>
          <button type="button" onClick={() => apply(DEFAULT_ACTIVITY)}>
            {t("filter.clear")}
          </button>
          <button type="button" onClick={() => setStamp(stamp + 1)}>
            {t("filter.refresh")}
          </button>
          <button type="button" onClick={() => setExporting(true)}>
            {t("btn.newExport")}
          </button>
        </div>
        <ZonePicker value={tz} onChange={(z) => (zone.value = z)} />
      </form>
      <ErrorBox error={error} />
      <p class="status" aria-live="polite">
        {t("msg.rows", { n: rows.length })}
        {!cursor && !loading && rows.length > 0 ? ` · ${t("msg.end")}` : ""}
        {loading ? ` · ${t("msg.loading")}` : ""}
        {searched && cursor && !loading ? ` · ${t("msg.searched", { at: formatTime(searched, tz, locale) })} ` : ""}
        {searched && cursor && !loading && (
          <button
            type="button"
            class="link"
            onClick={() => {
              autoPages.current = 0;
              void load(cursor);
            }}
          >
            {t("btn.searchFurther")}
          </button>
        )}
      </p>
      {!loading && !error && !cursor && rows.length === 0 && <p class="empty">{isNarrowed(filter) ? t("msg.empty.filtered") : t("msg.empty.none")}</p>}
      <div class="grid" role="table" aria-label={t("nav.activity")} aria-rowcount={rows.length + 1}>
        <div class="row head" role="row">
          <span role="columnheader">
            {t("col.date")} ({tz})
          </span>
          <span role="columnheader">{t("col.activity")}</span>
          <span role="columnheader">{t("col.user")}</span>
          <span role="columnheader">{t("col.username")}</span>
          <span role="columnheader">{t("col.description")}</span>
          <span role="columnheader">{t("col.result")}</span>
        </div>
        <div class="scroller" ref={scroller} tabIndex={0} aria-label={t("nav.activity")} role="rowgroup">
          <div class="spacer" style={{ height: `${virt.getTotalSize()}px` }}>
            {items.map((vi) => {
              const r = rows[vi.index];
              const d = describe(r.description);
              const who = [r.actor?.full_name, r.actor?.employee_id && `ID ${r.actor.employee_id}`, r.actor?.role, r.actor?.user_id].filter(Boolean).join(" · ");
              return (
                <div class="row" role="row" key={r.id} data-id={r.id} data-user={r.actor?.username ?? r.actor?.user_id ?? ""} aria-rowindex={vi.index + 2} style={{ transform: `translateY(${vi.start}px)` }}>
                  <span role="cell">
                    <a href={`/records/${encodeURIComponent(r.id)}`} onClick={linkClick}>
                      {formatTime(r.occurred_at, tz, locale)}
                    </a>
                  </span>
                  <span role="cell" class="activity">
                    {names.get(r.action) ?? r.action} <code>{r.action}</code>
                  </span>
                  <span role="cell" title={who}>
                    {r.actor?.username ? (
                      <a href={`/activity?user=${encodeURIComponent(r.actor.username)}`} onClick={linkClick}>
                        {r.actor?.full_name ?? r.actor.username}
                      </a>
                    ) : (
                      r.actor?.full_name ?? ""
                    )}
                  </span>
                  <span role="cell">{r.actor?.username ?? ""}</span>
                  <span role="cell" class="desc">
                    {d.short}
                    {d.long && (
                      <button type="button" class="link" onClick={() => setPanel(r)}>
                        {t("btn.details")}
                      </button>
                    )}
                  </span>
                  <span role="cell" class={`result ${r.result ?? ""}`}>
                    {r.result ?? ""}
                  </span>
                </div>
              );
            })}
          </div>
        </div>
      </div>
      {panel && (
        <aside class="panel" aria-label={t("col.description")}>
          <h2>{names.get(panel.action) ?? panel.action}</h2>
          <pre>{describe(panel.description).full}</pre>
          <a href={`/records/${encodeURIComponent(panel.id)}`} onClick={linkClick}>
            {t("detail.title")}
          </a>{" "}
          <button type="button" onClick={() => setPanel(null)}>
            {t("btn.close")}
          </button>
        </aside>
      )}
      {exporting && <ExportDialog view="events" filter={{ ...activityApiQuery(filter, tz) }} tz={tz} onClose={() => setExporting(false)} />}
    </section>
  );
}
