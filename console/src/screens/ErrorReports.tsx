// Error reports (seed 000): what agents' desktops uploaded, filtered by period, agent and team;
// each one opens (its reason, agent, server state, dialed numbers, log size) and downloads as the
// JSON the client saved. Not pseudonymised, so only tenant admins and contact-centre managers.
import { useEffect, useState } from "preact/hooks";
import { t, lang } from "../i18n";
import { api, ok, type Schemas } from "../api/client";
import { navigate } from "../router";
import { zone, formatTime } from "../zone";
import { PRESETS, errorReportsFromQuery, errorReportsToQuery, windowOf, type ErrorReportFilter, type Preset } from "../filters";
import { ErrorBox } from "./common";
import { saveFile } from "../download";
import { usePaged } from "../paged";

type Row = Schemas["ReportRow"];
type Report = Schemas["ErrorReport"];

async function fetchReport(id: string): Promise<Report> {
  return ok(await api.GET("/v1/error-reports/{id}", { params: { path: { id } } }));
}

function ReportPanel({ id, onClose }: { id: string; onClose: () => void }) {
  const [report, setReport] = useState<Report | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    setReport(null);
    fetchReport(id).then(setReport).catch(setError);
  }, [id]);
  return (
    <aside class="panel" aria-label={t("er.title", { id })}>
      <h2>{t("er.title", { id })}</h2>
      <ErrorBox error={error} />
      {report && (
        <>
          <dl class="fields">
            <div>
              <dt>{t("er.time")}</dt>
              <dd>{formatTime(report.created_at, zone.value, lang.value)}</dd>
            </div>
            <div>
              <dt>{t("col.username")}</dt>
              <dd>{report.username}</dd>
            </div>
            <div>
              <dt>{t("er.reason")}</dt>
              <dd data-reason>{report.reason ?? "—"}</dd>
            </div>
            <div>
              <dt>{t("er.entries")}</dt>
              <dd>{report.log.length}</dd>
            </div>
          </dl>
          <pre>{JSON.stringify(report, null, 2)}</pre>
        </>
      )}
      <button type="button" onClick={onClose}>
        {t("btn.close")}
      </button>
    </aside>
  );
}

export function ErrorReports({ search }: { search: string }) {
  const f = errorReportsFromQuery(search);
  const [form, setForm] = useState<ErrorReportFilter>(f);
  const [open, setOpen] = useState<string | null>(null);
  const list = usePaged<Row>(async (after) => {
    const w = windowOf({ period: f.period, from: "", to: "" });
    const query = { from: w.from, to: w.to, limit: 100, ...(f.agent ? { agent: f.agent } : {}), ...(f.team ? { team: f.team } : {}), ...(after ? { cursor: after } : {}) };
    return ok(await api.GET("/v1/error-reports", { params: { query } }));
  });
  const { items: rows, loading, error, setError } = list;
  useEffect(() => {
    setForm(f);
    setOpen(null);
    list.reload();
  }, [search]);

  return (
    <section class="screen">
      <h1>{t("nav.errorReports")}</h1>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          navigate(`/error-reports${errorReportsToQuery(form)}`);
        }}
      >
        <label class="field">
          {t("filter.period")}
          <select name="period" value={form.period} onChange={(e) => setForm({ ...form, period: e.currentTarget.value as Preset })}>
            {PRESETS.map((p) => (
              <option key={p} value={p}>
                {t(`period.${p}`)}
              </option>
            ))}
          </select>
        </label>
        <label class="field">
          {t("er.agent")}
          <input name="agent" value={form.agent} onInput={(e) => setForm({ ...form, agent: e.currentTarget.value })} />
        </label>
        <label class="field">
          {t("er.team")}
          <input name="team" value={form.team} onInput={(e) => setForm({ ...form, team: e.currentTarget.value })} />
        </label>
        <button type="submit">{t("btn.query")}</button>
        <button type="button" onClick={() => navigate("/error-reports")}>
          {t("btn.reset")}
        </button>
      </form>
      <ErrorBox error={error} />
      <p class="status" role="status">
        {loading ? t("msg.loading") : rows.length ? t("msg.rows", { n: rows.length }) : t("er.none")}
      </p>
      {rows.length > 0 && (
        <table class="tasks reports">
          <thead>
            <tr>
              <th scope="col">{t("er.time")}</th>
              <th scope="col">{t("er.agent")}</th>
              <th scope="col">{t("er.employee")}</th>
              <th scope="col">{t("er.team")}</th>
              <th scope="col">{t("er.reason")}</th>
              <th scope="col">{t("er.entries")}</th>
              <th scope="col">{t("er.size")}</th>
              <th scope="col">{t("col.actions")}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.id} data-id={r.id}>
                <td>{formatTime(r.time, zone.value, lang.value)}</td>
                <td>{r.agent ?? ""}</td>
                <td>{r.employee_id ?? ""}</td>
                <td>{r.teams.join(", ")}</td>
                <td>{r.reason ?? ""}</td>
                <td>{r.entries}</td>
                <td>{r.size}</td>
                <td>
                  <button type="button" onClick={() => setOpen(r.id)}>
                    {t("btn.details")}
                  </button>{" "}
                  <button type="button" onClick={() => void fetchReport(r.id).then((rep) => saveFile(new Blob([JSON.stringify(rep, null, 2)], { type: "application/json" }), `error-report-${r.id}.json`)).catch(setError)}>
                    {t("btn.download")}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {list.more && (
        <button type="button" onClick={list.more}>
          {t("btn.more")}
        </button>
      )}
      {open && <ReportPanel id={open} onClose={() => setOpen(null)} />}
    </section>
  );
}
