// Export schedules (tenant admins): a view (activity or sign-in log) exported on a cron or a fixed
// rate, each run covering a window relative to its time, optionally password-protected (seed
// 003's rule, checked as typed). Listed with next and last run; deleted after a confirmation.
import { useEffect, useState } from "preact/hooks";
import { t, lang, type Key } from "../i18n";
import { api, ok, ApiProblem, type Schemas } from "../api/client";
import { passwordViolations } from "../password";
import { zone, formatTime } from "../zone";
import { ErrorBox } from "./common";

type Schedule = Schemas["ScheduleInfo"];
type Window = Schemas["Window"];
const WINDOWS: Window[] = ["yesterday", "last_24h", "last_7d", "last_30d", "previous_month"];
const EVERY = ["15m", "1h", "6h", "1d", "7d"];

interface Draft {
  name: string;
  view: "events" | "sign-ins";
  how: "cron" | "every";
  cron: string;
  every: string;
  window: Window;
  format: "csv" | "jsonl" | "ocsf";
  password: string;
}

const EMPTY: Draft = { name: "", view: "events", how: "cron", cron: "0 2 * * *", every: "1d", window: "yesterday", format: "csv", password: "" };

function NewSchedule({ onCreated }: { onCreated: () => void }) {
  const [d, setD] = useState<Draft>(EMPTY);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState(false);
  const pw = d.password ? passwordViolations(d.password) : [];
  const fieldError = (f: string) => (error instanceof ApiProblem ? error.about(f) : undefined);
  const submit = (e: Event) => {
    e.preventDefault();
    setDone(false);
    if (pw.length) return;
    api
      .POST("/v1/export-schedules", {
        body: {
          name: d.name,
          window: d.window,
          format: d.format,
          tz: zone.value,
          compression: "zip",
          // The document types `filter` as a free object: its fields are those of POST /v1/exports.
          filter: { view: d.view } as unknown as Record<string, never>,
          ...(d.how === "cron" ? { cron: d.cron } : { every: d.every }),
          ...(d.password ? { password: d.password } : {}),
        },
      })
      .then((r) => {
        ok(r);
        setError(null);
        setDone(true);
        setD(EMPTY);
        onCreated();
      })
      .catch(setError);
  };
  return (
    <form class="settings" aria-labelledby="new-schedule" onSubmit={submit}>
      <h3 id="new-schedule">{t("sched.new")}</h3>
      <label class="field">
        {t("sched.name")}
        <input name="schedule_name" required value={d.name} aria-invalid={!!fieldError("name")} onInput={(e) => setD({ ...d, name: e.currentTarget.value })} />
      </label>
      <label class="field">
        {t("sched.view")}
        <select name="schedule_view" value={d.view} onChange={(e) => setD({ ...d, view: e.currentTarget.value as Draft["view"] })}>
          <option value="events">{t("nav.activity")}</option>
          <option value="sign-ins">{t("nav.signins")}</option>
        </select>
      </label>
      <fieldset class="field">
        <legend>{t("sched.when")}</legend>
        <label class="check">
          <input type="radio" name="how" checked={d.how === "cron"} onChange={() => setD({ ...d, how: "cron" })} />
          {t("sched.cron")}
        </label>
        <label class="check">
          <input type="radio" name="how" checked={d.how === "every"} onChange={() => setD({ ...d, how: "every" })} />
          {t("sched.every")}
        </label>
      </fieldset>
      {d.how === "cron" ? (
        <label class="field">
          {t("sched.cron.expr")}
          <input name="cron" value={d.cron} aria-invalid={!!fieldError("cron")} aria-describedby="cron-error" onInput={(e) => setD({ ...d, cron: e.currentTarget.value })} />
          {fieldError("cron") && (
            <span id="cron-error" class="field-error" role="alert">
              {fieldError("cron")}
            </span>
          )}
        </label>
      ) : (
        <label class="field">
          {t("sched.every")}
          <select name="every" value={d.every} onChange={(e) => setD({ ...d, every: e.currentTarget.value })}>
            {EVERY.map((x) => (
              <option key={x} value={x}>
                {x}
              </option>
            ))}
          </select>
        </label>
      )}
      <label class="field">
        {t("sched.window")}
        <select name="window" value={d.window} onChange={(e) => setD({ ...d, window: e.currentTarget.value as Window })}>
          {WINDOWS.map((w) => (
            <option key={w} value={w}>
              {t(`window.${w}` as Key)}
            </option>
          ))}
        </select>
      </label>
      <label class="field">
        {t("export.format")}
        <select name="schedule_format" value={d.format} onChange={(e) => setD({ ...d, format: e.currentTarget.value as Draft["format"] })}>
          <option value="csv">CSV</option>
          <option value="jsonl">JSON Lines</option>
          <option value="ocsf">OCSF 1.1 (JSON Lines)</option>
        </select>
      </label>
      <label class="field">
        {t("sched.password")}
        <input name="schedule_password" type="password" autoComplete="new-password" value={d.password} aria-invalid={pw.length > 0} aria-describedby="sched-pw-errors" onInput={(e) => setD({ ...d, password: e.currentTarget.value })} />
      </label>
      <ul id="sched-pw-errors" class="violations" aria-live="polite">
        {pw.map((v) => (
          <li key={v.key}>{t(v.key, v.vars)}</li>
        ))}
      </ul>
      <ErrorBox error={error} />
      {done && (
        <p class="notice ok" role="status">
          {t("sched.created")}
        </p>
      )}
      <div class="buttons">
        <button type="submit" class="primary" disabled={pw.length > 0}>
          {t("sched.create")}
        </button>
      </div>
    </form>
  );
}

export function Schedules() {
  const [items, setItems] = useState<Schedule[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [tick, setTick] = useState(0);
  const [deleting, setDeleting] = useState<Schedule | null>(null);
  useEffect(() => {
    api
      .GET("/v1/export-schedules")
      .then((r) => setItems(ok(r).items))
      .catch(setError);
  }, [tick]);
  const when = (iso?: string | null) => (iso ? formatTime(iso, zone.value, lang.value) : "—");
  return (
    <section aria-labelledby="schedules-title">
      <h2 id="schedules-title">{t("sched.title")}</h2>
      <ErrorBox error={error} />
      {items.length === 0 ? (
        <p class="hint">{t("sched.none")}</p>
      ) : (
        <table class="tasks schedules">
          <thead>
            <tr>
              <th scope="col">{t("sched.name")}</th>
              <th scope="col">{t("sched.when")}</th>
              <th scope="col">{t("sched.window")}</th>
              <th scope="col">{t("export.format")}</th>
              <th scope="col">{t("sched.next")}</th>
              <th scope="col">{t("sched.last")}</th>
              <th scope="col">{t("col.status")}</th>
              <th scope="col">{t("col.actions")}</th>
            </tr>
          </thead>
          <tbody>
            {items.map((s) => (
              <tr key={s.id} data-id={s.id}>
                <td>{s.name}</td>
                <td>{s.cron ? `cron ${s.cron}` : `${t("sched.every")} ${s.every_minutes} min`}</td>
                <td>{t(`window.${s.window}` as Key)}</td>
                <td>
                  {s.format}
                  {s.encrypted ? `, ${t("sched.encrypted")}` : ""}
                </td>
                <td>{when(s.next_run_at)}</td>
                <td>{when(s.last_run_at)}</td>
                <td>
                  {t(`status.${s.status}` as Key)}
                  {s.error ? ` (${s.error})` : ""}
                </td>
                <td>
                  <button type="button" onClick={() => setDeleting(s)}>
                    {t("btn.delete")}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <NewSchedule onCreated={() => setTick((n) => n + 1)} />
      {deleting && (
        <div class="backdrop">
          <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="delete-schedule">
            <h2 id="delete-schedule">{t("sched.delete", { name: deleting.name })}</h2>
            <div class="buttons">
              <button
                type="button"
                class="primary"
                autoFocus
                onClick={() => {
                  const id = deleting.id;
                  setDeleting(null);
                  api
                    .DELETE("/v1/export-schedules/{id}", { params: { path: { id } } })
                    .then((r) => ok(r))
                    .then(() => setTick((n) => n + 1))
                    .catch(setError);
                }}
              >
                {t("btn.delete")}
              </button>
              <button type="button" onClick={() => setDeleting(null)}>
                {t("btn.cancel")}
              </button>
            </div>
          </div>
        </div>
      )}
    </section>
  );
}
