// Export task view: statuses, records, bytes, progress while running, download, delete.
import { useEffect, useState } from "preact/hooks";
import { t, lang } from "../i18n";
import { api, ok, type ExportInfo } from "../api/client";
import { downloadPath } from "../download";
import { zone, formatTime } from "../zone";
import { ErrorBox } from "./common";
import { Schedules } from "./Schedules";
import { hasRole } from "../auth";

export async function download(id: string, fileName: string) {
  await downloadPath(`/v1/exports/${encodeURIComponent(id)}/download`, fileName);
}

export function ExportTasks({ view }: { view?: string }) {
  const [tasks, setTasks] = useState<ExportInfo[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    api
      .GET("/v1/exports", { params: { query: { limit: 100 } } })
      .then((r) => setTasks(ok(r).items.filter((x) => !view || x.view === view)))
      .catch(setError);
  }, [tick]);
  const busy = tasks.some((x) => x.status === "QUEUED" || x.status === "RUNNING");
  useEffect(() => {
    if (!busy) return;
    const h = setTimeout(() => setTick((n) => n + 1), 1000);
    return () => clearTimeout(h);
  }, [busy, tick]);
  return (
    <div>
      <ErrorBox error={error} />
      <table class="tasks">
        <thead>
          <tr>
            <th scope="col">{t("col.created")}</th>
            <th scope="col">{t("col.file")}</th>
            <th scope="col">{t("col.status")}</th>
            <th scope="col">{t("col.records")}</th>
            <th scope="col">{t("col.bytes")}</th>
            <th scope="col">{t("col.actions")}</th>
          </tr>
        </thead>
        <tbody>
          {tasks.map((x) => (
            <tr key={x.id} data-id={x.id} data-status={x.status}>
              <td>{formatTime(x.created_at, zone.value, lang.value)}</td>
              <td>{x.file_name}</td>
              <td class="status-cell">
                {t(`status.${x.status}`)}
                {x.status === "RUNNING" && <progress aria-label={t("status.RUNNING")} />}
                {x.error ? ` (${x.error})` : ""}
              </td>
              <td>{x.records}</td>
              <td>{x.bytes}</td>
              <td>
                {x.status === "SUCCEEDED" && (
                  <button type="button" onClick={() => void download(x.id, x.file_name).catch(setError)}>
                    {t("btn.download")}
                  </button>
                )}{" "}
                <button
                  type="button"
                  onClick={() =>
                    void api
                      .DELETE("/v1/exports/{id}", { params: { path: { id: x.id } } })
                      .then((r) => ok(r))
                      .then(() => setTick((n) => n + 1)).catch(setError)
                  }
                >
                  {t("btn.delete")}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function Exports() {
  return (
    <section class="screen">
      <h1>{t("nav.exports")}</h1>
      <ExportTasks />
      {hasRole("tenant_admin") && <Schedules />}
    </section>
  );
}
