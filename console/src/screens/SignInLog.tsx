// Seed 003's sign-in log: 1 Day / 3 Days / 7 Days / Customization, Account, Employee ID, Query / Reset.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { t, lang } from "../i18n";
import { api, ok, type SignInRow } from "../api/client";
import { signInFromQuery, signInToQuery, windowOf, DEFAULT_SIGNIN, type SignInFilter } from "../filters";
import { navigate } from "../router";
import { zone, formatTime } from "../zone";
import { ErrorBox, PeriodFields, ZonePicker } from "./common";
import { ExportDialog } from "./ExportDialog";
import { ExportTasks } from "./Exports";

export function signInApiQuery(f: SignInFilter, tz: string) {
  const base = { account: f.account || undefined, employee_id: f.employee_id || undefined, tz };
  if (f.period === "custom") return { ...base, ...windowOf(f) };
  return { ...base, period: f.period };
}

/** Seed 003's presets. */
const SIGN_IN_PERIODS = [
  ["1d", "period.1d"],
  ["3d", "period.3d"],
  ["7d", "period.7d"],
  ["custom", "period.custom"],
] as const;

export function SignInLog({ search }: { search: string }) {
  const filter = useMemo(() => signInFromQuery(search), [search]);
  const [draft, setDraft] = useState(filter);
  const [rows, setRows] = useState<SignInRow[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [searched, setSearched] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  const [dialog, setDialog] = useState<"export" | "tasks" | null>(null);
  const tz = zone.value;
  useEffect(() => setDraft(filter), [filter]);
  // The window of the list now shown, resolved when it starts (see ActivityLog).
  const listQuery = useRef(signInApiQuery(filter, tz));
  const load = async (after: string | null) => {
    setLoading(true);
    setError(null);
    try {
      if (!after) listQuery.current = signInApiQuery(filter, tz);
      const page = ok(await api.GET("/v1/sign-ins", { params: { query: { ...listQuery.current, limit: 100, cursor: after ?? undefined } } }));
      setRows((old) => (after ? [...old, ...page.items] : page.items));
      setCursor(page.next_cursor ?? null);
      setSearched(page.next_cursor ? (page.searched_until ?? null) : null);
    } catch (e) {
      setError(e);
    } finally {
      setLoading(false);
    }
  };
  useEffect(() => void load(null), [search, tz]);
  const go = (f: SignInFilter) => {
    const q = signInToQuery(f);
    navigate(`/sign-ins${q ? `?${q}` : ""}`);
  };
  return (
    <section class="screen">
      <h1>{t("nav.signins")}</h1>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          go(draft);
        }}
      >
        <PeriodFields
          periods={SIGN_IN_PERIODS}
          value={draft.period}
          onPeriod={(period) => setDraft({ ...draft, period })}
          from={draft.from}
          to={draft.to}
          onRange={(from, to) => setDraft({ ...draft, from, to })}
        />
        <label class="field">
          {t("col.account")}
          <input name="account" value={draft.account} onInput={(e) => setDraft({ ...draft, account: e.currentTarget.value })} />
        </label>
        <label class="field">
          {t("col.employee")}
          <input name="employee_id" value={draft.employee_id} onInput={(e) => setDraft({ ...draft, employee_id: e.currentTarget.value })} />
        </label>
        <div class="buttons">
          <button type="submit" class="primary">
            {t("btn.query")}
          </button>
          <button type="button" onClick={() => go(DEFAULT_SIGNIN)}>
            {t("btn.reset")}
          </button>
          <button type="button" onClick={() => setDialog("export")}>
            {t("btn.newExport")}
          </button>
          <button type="button" onClick={() => setDialog("tasks")}>
            {t("btn.exportView")}
          </button>
        </div>
        <ZonePicker value={tz} onChange={(z) => (zone.value = z)} />
      </form>
      <ErrorBox error={error} />
      <p class="status" aria-live="polite">
        {t("msg.rows", { n: rows.length })}
        {loading ? ` · ${t("msg.loading")}` : ""}
      </p>
      {searched && cursor && !loading && <p class="status">{t("msg.searched", { at: formatTime(searched, tz, lang.value) })}</p>}
      {!loading && !error && !cursor && rows.length === 0 && <p class="empty">{filter.account || filter.employee_id ? t("msg.empty.filtered") : t("msg.empty.none")}</p>}
      <table class="signins">
        <thead>
          <tr>
            <th scope="col">{t("col.account")}</th>
            <th scope="col">{t("col.employee")}</th>
            <th scope="col">{t("col.operation")}</th>
            <th scope="col">
              {t("col.optime")} ({tz})
            </th>
            <th scope="col">{t("col.result")}</th>
            <th scope="col">{t("col.ip")}</th>
            <th scope="col">{t("col.failure")}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.id} data-id={r.id}>
              <td>{r.account ?? ""}</td>
              <td>{r.employee_id ?? ""}</td>
              <td>{r.operation}</td>
              <td>{formatTime(r.time, tz, lang.value)}</td>
              <td>{r.result}</td>
              <td>{r.sign_in_ip ?? ""}</td>
              <td>{r.failure_reason_code ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {cursor && (
        <button type="button" onClick={() => void load(cursor)}>
          {searched ? t("btn.searchFurther") : t("btn.more")}
        </button>
      )}
      {dialog === "export" && <ExportDialog view="sign-ins" filter={signInApiQuery(filter, tz)} tz={tz} onClose={() => setDialog(null)} onCreated={() => undefined} />}
      {dialog === "tasks" && (
        <div class="backdrop">
          <div class="dialog wide" role="dialog" aria-modal="true" aria-labelledby="tasks-title">
            <h2 id="tasks-title">{t("btn.exportView")}</h2>
            <ExportTasks view="sign-ins" />
            <button type="button" onClick={() => setDialog(null)}>
              {t("btn.close")}
            </button>
          </div>
        </div>
      )}
    </section>
  );
}
